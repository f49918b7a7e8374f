package stack

import "strings"

// functionSpec describes one Lambda: its folder under functions/ and
// build/, its limits, and the node-table actions it calls. Nothing else in
// the stack grants a function anything.
type functionSpec struct {
	Name           string
	Description    string
	MemoryMB       float64
	TimeoutSeconds float64
	TableActions   []string
}

// functionSpecs lists every function of the stack.
var functionSpecs = []functionSpec{
	{
		Name:           "trigger",
		Description:    "Turns CloudWatch alarm state changes into pool scaling decisions",
		MemoryMB:       256,
		TimeoutSeconds: 10,
		// PutItem: dedupe marks. GetItem: cooldown marks.
		TableActions: []string{"dynamodb:GetItem", "dynamodb:PutItem"},
	},
}

// FunctionNames lists the functions the stack deploys, for the build and
// for tests.
func FunctionNames() []string {
	names := make([]string, len(functionSpecs))
	for i, s := range functionSpecs {
		names[i] = s.Name
	}
	return names
}

// LogicalID is the CloudFormation logical id prefix of the function, e.g.
// "TriggerFunction".
func (f functionSpec) LogicalID() string { return pascal(f.Name) + "Function" }

// pascal turns a dashed name such as live-rtmp-use1 into LiveRtmpUse1, for
// logical ids.
func pascal(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
