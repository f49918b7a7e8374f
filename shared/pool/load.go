package pool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one broken rule at one place in the configuration.
type FieldError struct {
	Path string // e.g. pools[1].capacity.min
	Rule string // e.g. "must not exceed capacity.max (8 > 4)"
}

func (e FieldError) Error() string { return e.Path + ": " + e.Rule }

// Errors is every broken rule found in one file, in file order.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadFile reads, checks and validates one environment's YAML file. The
// error names the file and lists every broken rule with its field path.
func LoadFile(path string) (File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("reading pool config: %w", err)
	}
	f, err := ParseYAML(raw)
	if err != nil {
		return File{}, fmt.Errorf("%s:\n%w", path, err)
	}
	return f, nil
}

// ParseYAML decodes a configuration file strictly: unknown and missing
// fields are errors with their paths, and the result is validated.
func ParseYAML(raw []byte) (File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return File{}, Errors{{Path: "(file)", Rule: "is not valid YAML: " + err.Error()}}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return File{}, Errors{{Path: "(file)", Rule: "is empty"}}
	}
	var errs Errors
	sc := shapeCheck{errs: &errs, left: maxShapeNodes}
	sc.check(root.Content[0], reflect.TypeOf(File{}), "")
	if len(errs) > 0 {
		return File{}, errs
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return File{}, Errors{{Path: "(file)", Rule: describeDecodeError(err)}}
	}
	if err := f.Validate(); err != nil {
		return File{}, err
	}
	return f, nil
}

// ParseJSON decodes the published form of a configuration, as the Lambdas
// read it from SSM, and validates it again: a hand-edited parameter gets the
// same rules as the file.
func ParseJSON(raw []byte) (File, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("decoding pool config: %w", err)
	}
	if err := f.Validate(); err != nil {
		return File{}, fmt.Errorf("validating pool config:\n%w", err)
	}
	return f, nil
}

// JSON returns the compact published form of the configuration.
func (f File) JSON() ([]byte, error) { return json.Marshal(f) }

var durationType = reflect.TypeOf(Duration(0))

// maxShapeNodes bounds the YAML values a pool file may expand to: far more
// than any real file (a pool is about 80).
const maxShapeNodes = 100000

// shapeCheck walks the YAML tree beside the Go type it must decode into, so
// that an unknown or missing field is reported with its full path instead of
// a bare line number.
type shapeCheck struct {
	errs *Errors
	left int
}

// check walks one node.
//
// Aliases are followed, within bounds: at most maxShapeNodes nodes are
// walked, so many aliases of a large value cannot blow a small file up
// into work that never ends. (The walk follows the Go type, which never
// contains itself, so an alias inside its own anchor ends there.)
func (sc *shapeCheck) check(n *yaml.Node, t reflect.Type, path string) {
	errs := sc.errs
	at := func(rule string, args ...any) {
		*errs = append(*errs, FieldError{Path: orRoot(path), Rule: fmt.Sprintf(rule, args...)})
	}
	if sc.left--; sc.left == 0 {
		at("the file expands to more than %d values through its aliases", maxShapeNodes)
	}
	if sc.left <= 0 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case t == durationType:
		var d Duration
		if n.Kind != yaml.ScalarNode {
			at("must be a duration such as \"90s\"")
		} else if err := d.parse(n.Value); err != nil {
			at("%v", err)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at("must be a mapping")
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			field, ok := fieldByTag(t, key)
			if !ok {
				*errs = append(*errs, FieldError{Path: join(path, key), Rule: fmt.Sprintf("unknown field (line %d)", n.Content[i].Line)})
				continue
			}
			if seen[key] {
				*errs = append(*errs, FieldError{Path: join(path, key), Rule: "appears twice"})
			}
			seen[key] = true
			sc.check(n.Content[i+1], field.Type, join(path, key))
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := yamlName(f)
			if f.Tag.Get("required") == "true" && !seen[name] {
				*errs = append(*errs, FieldError{Path: join(path, name), Rule: "required field is missing"})
			}
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			at("must be a list")
			return
		}
		for i, item := range n.Content {
			sc.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			at("must be a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			sc.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			at("must be a single value, not a %s", kindName(n.Kind))
			return
		}
		checkScalar(n, t, at)
	}
}

// checkScalar reports a scalar that cannot become the Go kind it must fill.
func checkScalar(n *yaml.Node, t reflect.Type, at func(string, ...any)) {
	switch t.Kind() {
	case reflect.Int:
		if _, err := strconv.Atoi(n.Value); err != nil || n.Tag != "!!int" {
			at("must be a whole number, got %q", n.Value)
		}
	case reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			at("must be a number, got %q", n.Value)
		}
	case reflect.Bool:
		if n.Tag != "!!bool" {
			at("must be true or false, got %q", n.Value)
		}
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if yamlName(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(file)"
	}
	return path
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "value"
	}
}

func describeDecodeError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := append([]string(nil), te.Errors...)
		sort.Strings(msgs)
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}
