package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// -o yaml is YAML (the issue: it was accepted and printed text), with the
// JSON names in the JSON order, and strings that look like other types
// stay strings when read back.
func TestEmitYAMLIsYAMLWithJSONNames(t *testing.T) {
	type rec struct {
		Name     string            `json:"name"`
		Progress int               `json:"progress"`
		Version  string            `json:"version"`
		Empty    string            `json:"empty,omitempty"`
		Vars     map[string]string `json:"vars"`
		Text     string            `json:"text"`
	}
	in := []rec{{Name: "web1", Progress: 40, Version: "9.4", Vars: map[string]string{"on": "yes"}, Text: "a\nb"}}
	for _, f := range []string{formatJSON, formatYAML} {
		g := &globals{output: f}
		var out bytes.Buffer
		called := false
		if err := g.emit(&out, in, func(io.Writer) error { called = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if called {
			t.Fatalf("-o %s printed the table", f)
		}
		var back []map[string]any
		var err error
		if f == formatJSON {
			err = json.Unmarshal(out.Bytes(), &back)
		} else {
			if strings.HasPrefix(strings.TrimSpace(out.String()), "[") || strings.Contains(out.String(), "{") {
				t.Fatalf("-o yaml printed flow style:\n%s", out.String())
			}
			err = yaml.Unmarshal(out.Bytes(), &back)
		}
		if err != nil {
			t.Fatalf("-o %s does not parse: %v\n%s", f, err, out.String())
		}
		r := back[0]
		if r["name"] != "web1" || r["version"] != "9.4" || r["text"] != "a\nb" {
			t.Errorf("-o %s: %#v", f, r)
		}
		if _, ok := r["empty"]; ok {
			t.Errorf("-o %s: omitempty field printed", f)
		}
		if v, _ := r["vars"].(map[string]any); v["on"] != "yes" {
			t.Errorf("-o %s: vars %#v", f, r["vars"])
		}
		if f == formatYAML && strings.Index(out.String(), "name:") > strings.Index(out.String(), "progress:") {
			t.Errorf("-o yaml lost the field order:\n%s", out.String())
		}
	}
}

func TestCheckFormat(t *testing.T) {
	for f, ok := range map[string]bool{"table": true, "text": true, "json": true, "yaml": true, "yml": false, "JSON": false, "": false} {
		g := &globals{output: f}
		err := g.checkFormat()
		if (err == nil) != ok {
			t.Errorf("-o %q: %v", f, err)
		}
		if err != nil {
			if _, is := err.(*usageError); !is {
				t.Errorf("-o %q: %T is not a usage error (exit 2)", f, err)
			}
		}
	}
}
