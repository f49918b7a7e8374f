// Package readme keeps README.md true to the code: every pool field has a
// row in the configuration reference, and every make command it shows is
// a target of the Makefile.
package readme

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/mediascale/mediascale/shared/pool"
)

func readme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// fieldPaths lists the YAML path of every leaf field under typ, as the
// reference writes them (placement[].az).
func fieldPaths(typ reflect.Type, prefix string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, fieldPaths(ft.Elem(), path+"[].")...)
		case ft.Kind() == reflect.Struct && ft.NumField() > 0 && ft.PkgPath() == typ.PkgPath():
			out = append(out, fieldPaths(ft, path+".")...)
		default:
			out = append(out, path)
		}
	}
	return out
}

func TestReadmeDocumentsEveryPoolField(t *testing.T) {
	doc := readme(t)
	ref := doc[strings.Index(doc, "### Pool fields"):]
	paths := append([]string{"environment", "pools"}, fieldPaths(reflect.TypeOf(pool.Pool{}), "")...)
	if len(paths) < 40 {
		t.Fatalf("only %d fields found: the walk is broken", len(paths))
	}
	// A step's guard has the pool guard's fields and one row saying so;
	// the two alarm directions share rows written alarms.*.field.
	const stepGuard = "traffic.steps[].guard"
	direction := regexp.MustCompile(`\.scale(Out|In)\.`)
	for _, p := range paths {
		if strings.Contains(ref, "`"+p+"`") || strings.Contains(ref, "`"+direction.ReplaceAllString(p, ".*.")+"`") {
			continue
		}
		if strings.HasPrefix(p, stepGuard+".") && strings.Contains(ref, "`"+stepGuard+"`") {
			continue
		}
		t.Errorf("README.md, Pool fields: no row for %s", p)
	}
}

func TestReadmeMakeCommandsAreMakefileTargets(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = true
	}
	found := 0
	for _, m := range regexp.MustCompile(`(?m)(?:^\s+|`+"`"+`)make ([a-z][a-z0-9-]*)`).FindAllStringSubmatch(readme(t), -1) {
		found++
		if !targets[m[1]] {
			t.Errorf("README.md shows `make %s`, which the Makefile has no target for", m[1])
		}
	}
	if found < 10 {
		t.Fatalf("only %d make commands found in README.md: the pattern is broken", found)
	}
}
