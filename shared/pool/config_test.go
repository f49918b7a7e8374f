package pool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const configDir = "../../infra/config"

func TestTheLocalLoopPoolFileIsValid(t *testing.T) {
	f, err := LoadFile(filepath.Join(configDir, "dev-loop.yaml"))
	if err != nil || f.Environment != "dev" {
		t.Fatalf("dev-loop.yaml: %v (environment %q)", err, f.Environment)
	}
	if p := f.Pools[0]; !p.HighResolution() || p.AgentInterval() != 2*time.Second {
		t.Fatalf("the loop pool must alarm on 10 s periods with a 2 s agent: %+v", p.Agent)
	}
}

func TestShippedConfigsAreValid(t *testing.T) {
	for _, env := range []string{"dev", "devusw2", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			f, err := LoadFile(filepath.Join(configDir, env+".yaml"))
			if err != nil {
				t.Fatalf("shipped config does not load: %v", err)
			}
			if f.Environment != env {
				t.Fatalf("environment = %q, want %q", f.Environment, env)
			}
			modes := map[string]bool{}
			for _, p := range f.Pools {
				modes[p.Traffic.Mode] = true
			}
			// devusw2 is dev's second region, with only the pool dev's
			// live pool spills into.
			if env != "devusw2" && (!modes[TrafficRoute53] || !(modes[TrafficALB] || modes[TrafficNLB])) {
				t.Fatalf("want a route53 pool and a load-balancer pool, got modes %v", modes)
			}
		})
	}
}

// mutate loads dev.yaml as plain maps, lets change edit it, and returns the
// edited YAML, so each case states only what it breaks.
func mutate(t *testing.T, change func(doc map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(configDir, "dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	change(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pool0(doc map[string]any) map[string]any {
	return doc["pools"].([]any)[0].(map[string]any)
}

func pool1(doc map[string]any) map[string]any {
	return doc["pools"].([]any)[1].(map[string]any)
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestInvalidConfigNamesFieldAndRule(t *testing.T) {
	cases := []struct {
		name   string
		change func(doc map[string]any)
		path   string
		rule   string
	}{
		{"an unknown top-level field is an error", func(d map[string]any) { d["poolz"] = 1 }, "poolz", "unknown field"},
		{"an unknown nested field is an error", func(d map[string]any) { sub(pool0(d), "capacity")["maximum"] = 3 }, "pools[0].capacity.maximum", "unknown field"},
		{"a missing required field is an error", func(d map[string]any) { delete(pool0(d), "drain") }, "pools[0].drain", "required field is missing"},
		{"a missing nested field is an error", func(d map[string]any) { delete(sub(pool1(d), "launchTemplate"), "version") }, "pools[1].launchTemplate.version", "required field is missing"},
		{"min above max is an error", func(d map[string]any) { sub(pool0(d), "capacity")["min"] = 9 }, "pools[0].capacity.min", "must not exceed capacity.max (9 > 6)"},
		{"a negative min is an error", func(d map[string]any) { sub(pool0(d), "capacity")["min"] = -1 }, "pools[0].capacity.min", "must not be negative"},
		{"a scale-in step larger than the scale-out step is an error", func(d map[string]any) { sub(pool0(d), "capacity")["scaleInStep"] = 5 }, "pools[0].capacity.scaleInStep", "must not exceed capacity.scaleOutStep"},
		{"a warm pool larger than max is an error", func(d map[string]any) { sub(pool0(d), "capacity")["warmPool"] = 7 }, "pools[0].capacity.warmPool", "must not exceed capacity.max"},
		{"shift steps that do not ascend are an error", func(d map[string]any) {
			sub(pool0(d), "traffic")["steps"] = []any{map[string]any{"percent": 30}, map[string]any{"percent": 10}, map[string]any{"percent": 100}}
		}, "pools[0].traffic.steps[1].percent", "steps ascend"},
		{"shift steps that do not end at 100 are an error", func(d map[string]any) {
			sub(pool0(d), "traffic")["steps"] = []any{map[string]any{"percent": 10}, map[string]any{"percent": 50}}
		}, "pools[0].traffic.steps[1].percent", "the last step must be 100"},
		{"a shift step above 100 is an error", func(d map[string]any) {
			sub(pool0(d), "traffic")["steps"] = []any{map[string]any{"percent": 150}}
		}, "pools[0].traffic.steps[0].percent", "between 1 and 100"},
		{"the $Latest launch template version is an error", func(d map[string]any) { sub(pool0(d), "launchTemplate")["version"] = "$Latest" }, "pools[0].launchTemplate.version", "must be a numbered version, not $Latest"},
		{"the $Default launch template version is an error", func(d map[string]any) { sub(pool1(d), "launchTemplate")["version"] = "$Default" }, "pools[1].launchTemplate.version", "must be a numbered version, not $Default"},
		{"a malformed launch template id is an error", func(d map[string]any) { sub(pool0(d), "launchTemplate")["id"] = "template-1" }, "pools[0].launchTemplate.id", "must be a launch template id"},
		{"a negative drain timeout is an error", func(d map[string]any) { sub(pool0(d), "drain")["timeout"] = "-5m" }, "pools[0].drain.timeout", "must not be negative"},
		{"a negative bake time is an error", func(d map[string]any) { sub(pool1(d), "traffic")["bake"] = "-1s" }, "pools[1].traffic.bake", "must not be negative"},
		{"a zero deploy timeout is an error", func(d map[string]any) { sub(pool0(d), "deploy")["timeout"] = "0s" }, "pools[0].deploy.timeout", "must be greater than zero"},
		{"a duration without a unit is an error", func(d map[string]any) { sub(pool0(d), "probe")["timeout"] = 2 }, "pools[0].probe.timeout", "is not a duration"},
		{"text where a number belongs is an error", func(d map[string]any) { sub(pool0(d), "capacity")["max"] = "lots" }, "pools[0].capacity.max", "must be a whole number"},
		{"a list where a mapping belongs is an error", func(d map[string]any) { pool0(d)["capacity"] = []any{1, 2} }, "pools[0].capacity", "must be a mapping"},
		{"duplicate pool names are an error", func(d map[string]any) { pool1(d)["name"] = pool0(d)["name"] }, "pools[1].name", "duplicate pool name \"live-rtmp-use1\" (also pools[0])"},
		{"a control target above 100 % is an error", func(d map[string]any) { pool0(d)["control"] = map[string]any{"targetPercent": 120} }, "pools[0].control.targetPercent", "at most 100"},
		{"a scale-in bound above 100 % is an error", func(d map[string]any) { pool0(d)["control"] = map[string]any{"maxShrinkPercent": 150} }, "pools[0].control.maxShrinkPercent", "between 1 and 100"},
		{"a tolerance above 50 % is an error", func(d map[string]any) { pool0(d)["control"] = map[string]any{"tolerancePercent": 60} }, "pools[0].control.tolerancePercent", "between 0 and 50"},
		{"an unknown control field is an error", func(d map[string]any) { pool0(d)["control"] = map[string]any{"gain": 2} }, "pools[0].control.gain", "unknown field"},
		{"an agent interval under a second is an error", func(d map[string]any) { pool0(d)["agent"] = map[string]any{"interval": "500ms"} }, "pools[0].agent.interval", "between 1s and 5m"},
		{"a negative failure count is an error", func(d map[string]any) { pool0(d)["healing"] = map[string]any{"failures": -1} }, "pools[0].healing.failures", "between 1 and 10"},
		{"a replacement bound over 100 an hour is an error", func(d map[string]any) { pool0(d)["healing"] = map[string]any{"maxReplacementsPerHour": 500} }, "pools[0].healing.maxReplacementsPerHour", "between 1 and 100"},
		{"a retry-after over ten minutes is an error", func(d map[string]any) { pool0(d)["admission"] = map[string]any{"retryAfter": "1h"} }, "pools[0].admission.retryAfter", "between 1s and 10m"},
		{"a class named twice is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"classes": []any{map[string]any{"name": "viewer", "ceilingPercent": 90}, map[string]any{"name": "viewer", "ceilingPercent": 100}}}
		}, "pools[0].admission.classes[1].name", "duplicate class \"viewer\" (also classes[0])"},
		{"a class name with capitals is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"classes": []any{map[string]any{"name": "VIP", "ceilingPercent": 90}}}
		}, "pools[0].admission.classes[0].name", "lowercase"},
		{"a class without a ceiling is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"classes": []any{map[string]any{"name": "viewer"}}}
		}, "pools[0].admission.classes[0].ceilingPercent", "required field is missing"},
		{"a ceiling the media server never reaches is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"classes": []any{map[string]any{"name": "publisher", "ceilingPercent": 150}}}
		}, "pools[0].admission.classes[0].ceilingPercent", "must be at most 133.3: the media server admits 2000 sessions a node"},
		{"a fallback in the pool's own region is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"fallbacks": []any{map[string]any{"region": "us-east-1", "environment": "devusw2", "pool": "live-rtmp-usw2"}}}
		}, "pools[0].admission.fallbacks[0].region", "must be another region than the pool's own (us-east-1)"},
		{"a fallback named twice is an error", func(d map[string]any) {
			f := map[string]any{"region": "us-west-2", "environment": "devusw2", "pool": "live-rtmp-usw2"}
			pool0(d)["admission"] = map[string]any{"fallbacks": []any{f, f}}
		}, "pools[0].admission.fallbacks[1]", "names devusw2/live-rtmp-usw2 (us-west-2) again (also fallbacks[0])"},
		{"a fallback without its environment is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"fallbacks": []any{map[string]any{"region": "us-west-2", "pool": "live-rtmp-usw2"}}}
		}, "pools[0].admission.fallbacks[0].environment", "required field is missing"},
		{"a fallback environment that is no environment name is an error", func(d map[string]any) {
			pool0(d)["admission"] = map[string]any{"fallbacks": []any{map[string]any{"region": "us-west-2", "environment": "Dev-West", "pool": "live-rtmp-usw2"}}}
		}, "pools[0].admission.fallbacks[0].environment", "must be an environment name"},
		{"a synthetic session on a tcp probe is an error", func(d map[string]any) {
			sub(pool1(d), "probe")["session"] = map[string]any{"app": "live", "maxTimeToFirstMedia": "1s"}
		}, "pools[1].probe.session", "needs handshake rtmp"},
		{"a synthetic session that may take the whole probe timeout is an error", func(d map[string]any) {
			sub(pool0(d), "probe")["session"] = map[string]any{"app": "live", "maxTimeToFirstMedia": "2s"}
		}, "pools[0].probe.session.maxTimeToFirstMedia", "must be below probe.timeout (2s >= 2s)"},
		{"a synthetic session without its application is an error", func(d map[string]any) {
			sub(pool0(d), "probe")["session"] = map[string]any{"maxTimeToFirstMedia": "1s"}
		}, "pools[0].probe.session.app", "required field is missing"},
		{"an unknown traffic mode is an error", func(d map[string]any) { sub(pool0(d), "traffic")["mode"] = "dns" }, "pools[0].traffic.mode", "must be one of route53, alb, nlb"},
		{"route53 mode without its record is an error", func(d map[string]any) { delete(sub(pool0(d), "traffic"), "route53") }, "pools[0].traffic.route53", "required field is missing"},
		{"a load-balancer pool with a route53 block is an error", func(d map[string]any) {
			sub(pool1(d), "traffic")["route53"] = sub(pool0(d), "traffic")["route53"]
		}, "pools[1].traffic.route53", "must not be set when mode is nlb"},
		{"a Route53 TTL above 60 seconds is an error", func(d map[string]any) { sub(sub(pool0(d), "traffic"), "route53")["ttl"] = 300 }, "pools[0].traffic.route53.ttl", "between 1 and 60"},
		{"a zone outside the pool's region is an error", func(d map[string]any) {
			pool0(d)["placement"].([]any)[0].(map[string]any)["az"] = "eu-west-1a"
		}, "pools[0].placement[0].az", "must be a zone of region us-east-1"},
		{"a malformed subnet id is an error", func(d map[string]any) {
			pool0(d)["placement"].([]any)[1].(map[string]any)["subnet"] = "my-subnet"
		}, "pools[0].placement[1].subnet", "must be a subnet id"},
		{"no instance types is an error", func(d map[string]any) { pool0(d)["instanceTypes"] = []any{} }, "pools[0].instanceTypes", "at least one instance type"},
		{"a repeated instance type is an error", func(d map[string]any) { pool0(d)["instanceTypes"] = []any{"c7g.large", "c7g.large"} }, "pools[0].instanceTypes[1]", "listed twice"},
		{"a scale-in cooldown shorter than scale-out is an error", func(d map[string]any) { sub(pool0(d), "cooldowns")["scaleIn"] = "60s" }, "pools[0].cooldowns.scaleIn", "must be at least cooldowns.scaleOut"},
		{"a scale-in CPU threshold above scale-out is an error", func(d map[string]any) { sub(sub(pool0(d), "alarms"), "scaleIn")["cpuPercent"] = 90 }, "pools[0].alarms.scaleIn.cpuPercent", "must be below alarms.scaleOut.cpuPercent"},
		{"a scale-in window no longer than scale-out is an error", func(d map[string]any) { sub(sub(pool0(d), "alarms"), "scaleIn")["period"] = "10s" }, "pools[0].alarms.scaleIn", "longer window"},
		{"a show at no time of day is an error", func(d map[string]any) {
			pool0(d)["shows"] = []any{map[string]any{"name": "evening", "start": "25:00", "peak": 100}}
		}, "pools[0].shows[0].start", "must be a time of day HH:MM in UTC"},
		{"a show on an unknown day is an error", func(d map[string]any) {
			pool0(d)["shows"] = []any{map[string]any{"name": "evening", "start": "20:00", "peak": 100, "days": []any{"mon", "funday"}}}
		}, "pools[0].shows[0].days[1]", "must be one of sun, mon"},
		{"a show with no audience is an error", func(d map[string]any) {
			pool0(d)["shows"] = []any{map[string]any{"name": "evening", "start": "20:00", "peak": 0}}
		}, "pools[0].shows[0].peak", "must be between 1 and"},
		{"two shows of one name are an error", func(d map[string]any) {
			pool0(d)["shows"] = []any{map[string]any{"name": "evening", "start": "20:00", "peak": 1}, map[string]any{"name": "evening", "start": "21:00", "peak": 1}}
		}, "pools[0].shows[1].name", "listed twice"},
		{"a show ramping for more than an hour is an error", func(d map[string]any) {
			pool0(d)["shows"] = []any{map[string]any{"name": "evening", "start": "20:00", "peak": 1, "ramp": "2h"}}
		}, "pools[0].shows[0].ramp", "between 0 and 1h"},
		{"an rtmp pool probed without the rtmp handshake is an error", func(d map[string]any) { sub(pool0(d), "probe")["handshake"] = "tcp" }, "pools[0].probe.handshake", "must be rtmp for an rtmp pool"},
		{"a max probe latency above the probe timeout is an error", func(d map[string]any) { sub(pool0(d), "probe")["maxLatency"] = "5s" }, "pools[0].probe.maxLatency", "must not exceed probe.timeout"},
		{"an out-of-range port is an error", func(d map[string]any) { sub(pool0(d), "probe")["mediaPort"] = 70000 }, "pools[0].probe.mediaPort", "between 1 and 65535"},
		{"a guard CPU limit above 100 is an error", func(d map[string]any) { sub(sub(pool0(d), "traffic"), "guard")["maxCpuPercent"] = 120 }, "pools[0].traffic.guard.maxCpuPercent", "at most 100"},
		{"a malformed target group ARN is an error", func(d map[string]any) {
			sub(sub(pool1(d), "traffic"), "loadBalancer")["targetGroupArn"] = "tg-1"
		}, "pools[1].traffic.loadBalancer.targetGroupArn", "must be a target group ARN"},
		{"an unknown media kind is an error", func(d map[string]any) { pool0(d)["media"] = "hls" }, "pools[0].media", "must be one of rtmp, sfu, voice"},
		{"a pool name with capitals is an error", func(d map[string]any) { pool0(d)["name"] = "LiveRTMP" }, "pools[0].name", "lowercase"},
		{"an empty pool list is an error", func(d map[string]any) { d["pools"] = []any{} }, "pools", "at least one pool"},
		{"a bad environment name is an error", func(d map[string]any) { d["environment"] = "Dev Env" }, "environment", "lowercase"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML(mutate(t, tc.change))
			if err == nil {
				t.Fatal("config was accepted")
			}
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("error is %T, want pool.Errors: %v", err, err)
			}
			for _, e := range errs {
				if e.Path == tc.path && strings.Contains(e.Rule, tc.rule) {
					return
				}
			}
			t.Fatalf("no error at %s containing %q; got:\n%v", tc.path, tc.rule, err)
		})
	}
}

func TestParseYAMLRejectsWhatIsNotAConfig(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want string
	}{
		{"an empty file is refused", "", "(file): is empty"},
		{"broken YAML is refused", "pools: [", "is not valid YAML"},
		{"a list at the top is refused", "- a\n- b\n", "(file): must be a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(path, mutate(t, func(d map[string]any) { sub(pool0(d), "capacity")["min"] = 100 }), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "pools[0].capacity.min") {
		t.Fatalf("err = %v, want the file path and the field path", err)
	}
}

func TestPublishedJSONRoundTrips(t *testing.T) {
	f, err := LoadFile(filepath.Join(configDir, "dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSON(raw)
	if err != nil {
		t.Fatalf("published JSON does not parse: %v", err)
	}
	p, _ := back.Find("live-rtmp-use1")
	if p.Drain.Timeout.D() != 15*time.Minute || p.LaunchTemplate.Version != "1" {
		t.Fatalf("round trip lost values: drain %s, version %q", p.Drain.Timeout, p.LaunchTemplate.Version)
	}
	if _, err := ParseJSON([]byte(`{"environment":"dev","pools":[],"extra":1}`)); err == nil {
		t.Fatal("unknown JSON field was accepted")
	}
}

func TestShiftStepsInheritBakeAndGuard(t *testing.T) {
	f, err := LoadFile(filepath.Join(configDir, "dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	live, _ := f.Find("live-rtmp-use1")
	voice, _ := f.Find("voice-sfu-use1")
	cases := []struct {
		name     string
		pool     Pool
		percents []int
		bakes    []time.Duration
	}{
		{"a pool with listed steps keeps its per-step bake", live, []int{10, 30, 50, 80, 100}, []time.Duration{time.Minute, time.Minute, time.Minute, 2 * time.Minute, time.Minute}},
		{"a pool without steps gets the default ladder", voice, []int{10, 30, 50, 80, 100}, []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := tc.pool.ShiftSteps()
			if len(steps) != len(tc.percents) {
				t.Fatalf("got %d steps, want %d", len(steps), len(tc.percents))
			}
			for i, s := range steps {
				if s.Percent != tc.percents[i] || s.Bake.D() != tc.bakes[i] || s.Guard == nil {
					t.Fatalf("step %d = %+v, want %d%% baked %s with a guard", i, s, tc.percents[i], tc.bakes[i])
				}
			}
		})
	}
}

func TestAlarmIndexMapsEveryAlarmToItsPool(t *testing.T) {
	f, err := LoadFile(filepath.Join(configDir, "dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	idx := f.AlarmIndex()
	if len(idx) != len(f.Pools)*len(Metrics)*2 {
		t.Fatalf("index has %d alarms, want %d", len(idx), len(f.Pools)*len(Metrics)*2)
	}
	ref, ok := idx["mediascale-dev-voice-sfu-use1-scale-in-bandwidth"]
	if !ok || ref.Pool != "voice-sfu-use1" || ref.Direction != ScaleIn || ref.Metric != MetricBandwidth {
		t.Fatalf("lookup = %+v, %v", ref, ok)
	}
}

func TestControlDefaultsFollowTheAlarms(t *testing.T) {
	f, err := LoadFile("../../infra/config/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.Find("live-rtmp-use1")
	c := p.Controller()
	if c.TargetPercent != 80 || c.TolerancePercent != 10 || c.MaxGrowthPercent != 100 || c.MaxShrinkPercent != 50 || c.ScaleInWindow.D() != 15*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	// The live pool's scale-out alarms have 10 s periods: its agents
	// publish at one-second resolution.
	if p.AgentInterval() != 10*time.Second || p.HeartbeatMaxAge() != 30*time.Second || !p.HighResolution() {
		t.Fatalf("agent defaults: interval %s, max age %s, high resolution %v", p.AgentInterval(), p.HeartbeatMaxAge(), p.HighResolution())
	}
	p.Alarms.ScaleOut.Period = Duration(time.Minute)
	if p.HighResolution() {
		t.Fatal("one-minute alarms need no high-resolution metrics")
	}
	p.Control = Control{TargetPercent: 60, ScaleInWindow: Duration(time.Minute)}
	p.Alarms.ScaleOut.Period = Duration(10 * time.Second)
	if c := p.Controller(); c.TargetPercent != 60 || c.ScaleInWindow.D() != time.Minute || !p.HighResolution() {
		t.Fatalf("set values must win: %+v", c)
	}
}

func TestRevisionChangesWithWhatANodeIsBuiltFrom(t *testing.T) {
	base := Pool{
		LaunchTemplate: LaunchTemplate{ID: "lt-0abc", Version: "3"},
		Deploy:         Deploy{Document: "media-rtmp", Parameters: map[string]string{"rtmpPort": "1935", "maxConnections": "2000"}},
	}
	cases := []struct {
		name   string
		change func(p *Pool)
		same   bool
	}{
		{"the same pool has the same revision", func(p *Pool) {}, true},
		{"parameters written in another order are the same revision", func(p *Pool) {
			p.Deploy.Parameters = map[string]string{"maxConnections": "2000", "rtmpPort": "1935"}
		}, true},
		{"a new launch template version is a new revision", func(p *Pool) { p.LaunchTemplate.Version = "4" }, false},
		{"another launch template is a new revision", func(p *Pool) { p.LaunchTemplate.ID = "lt-0def" }, false},
		{"another deploy document is a new revision", func(p *Pool) { p.Deploy.Document = "media-rtmp-v2" }, false},
		{"a changed deploy parameter is a new revision", func(p *Pool) { p.Deploy.Parameters = map[string]string{"rtmpPort": "1935", "maxConnections": "3000"} }, false},
		{"another agent interval is a new revision", func(p *Pool) { p.Agent.Interval = Duration(2 * time.Second) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.Deploy.Parameters = map[string]string{}
			for k, v := range base.Deploy.Parameters {
				p.Deploy.Parameters[k] = v
			}
			tc.change(&p)
			if got := p.Revision() == base.Revision(); got != tc.same {
				t.Fatalf("%s vs %s: same = %v, want %v", p.Revision(), base.Revision(), got, tc.same)
			}
		})
	}
	if got := base.Revision(); !strings.HasPrefix(got, "lt-0abc:3/") {
		t.Fatalf("revision %q does not start with the launch template and version", got)
	}
}

func TestAPoolFileWhoseAliasesNeverEndIsRefused(t *testing.T) {
	many := func(alias string, n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(alias+",", n), ",") + "]"
	}
	cases := []struct {
		name, raw, want string
	}{
		{"aliases of aliases that multiply a small file",
			"environment: dev\nzone: &z {az: us-east-1a, subnet: managed}\npool: &p {name: live, placement: " + many("*z", 400) + "}\npools: " + many("*p", 400) + "\n",
			"expands to more than 100000 values"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := ParseYAML([]byte(tc.raw)); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want a refusal containing %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still parsing after 10 s")
			}
		})
	}
}

func TestAShowsNextStart(t *testing.T) {
	sat := time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC) // a Saturday
	cases := []struct {
		name string
		show Show
		want string
	}{
		{"a daily show later today starts today", Show{Start: "21:30"}, "2026-11-21T21:30:00Z"},
		{"a daily show earlier today starts tomorrow", Show{Start: "06:00"}, "2026-11-22T06:00:00Z"},
		{"a weekday show on a Saturday starts on Monday", Show{Start: "20:00", Days: []string{"mon", "fri"}}, "2026-11-23T20:00:00Z"},
		{"a show starting now starts now", Show{Start: "20:00", Days: []string{"sat"}}, "2026-11-21T20:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if at, ok := tc.show.Next(sat); !ok || at.Format(time.RFC3339) != tc.want {
				t.Fatalf("Next = %s, %v; want %s", at.Format(time.RFC3339), ok, tc.want)
			}
		})
	}
}
