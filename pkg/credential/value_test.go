package credential

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secretText = "hunter2-very-secret"

func TestValueNeverPrints(t *testing.T) {
	v := NewValue([]byte(secretText))
	c := Credential{Name: "API_KEY", Value: v}
	type hidden struct{ v Value } // fmt cannot call methods on unexported fields
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		outputs = append(outputs, fmt.Sprintf(verb, v), fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c),
			fmt.Sprintf(verb, []Credential{c}), fmt.Sprintf(verb, hidden{v}), fmt.Sprintf(verb, map[string]Value{"k": v}))
	}
	outputs = append(outputs, v.String(), v.GoString(), fmt.Sprint(v), fmt.Sprintln(c))
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "value", v, "cred", c)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "value", v, "cred", c)
	outputs = append(outputs, buf.String())

	hexSecret := fmt.Sprintf("%x", secretText)
	for _, out := range outputs {
		if strings.Contains(out, secretText) || strings.Contains(strings.ToLower(out), hexSecret) || strings.Contains(out, "104 117 110") {
			t.Errorf("secret leaked: %s", out)
		}
	}
	if got := fmt.Sprint(v); got != "[redacted 19 bytes]" {
		t.Errorf("Sprint = %q", got)
	}
	if !strings.Contains(string(j), `"Value":"[redacted 19 bytes]"`) {
		t.Errorf("JSON = %s", j)
	}
}

func TestValueEqualAndWipe(t *testing.T) {
	a, b := NewValue([]byte("abc")), NewValue([]byte("abc"))
	if !a.Equal(b) || a.Equal(NewValue([]byte("abd"))) || a.Equal(NewValue([]byte("ab"))) {
		t.Error("Equal is wrong")
	}
	if (Value{}).Len() != 0 || !(Value{}).Equal(NewValue(nil)) {
		t.Error("zero Value is not empty")
	}
	c := a
	a.Wipe()
	if !bytes.Equal(c.Bytes(), []byte{0, 0, 0}) {
		t.Errorf("Wipe did not reach the copy: %v", c.Bytes())
	}
}
