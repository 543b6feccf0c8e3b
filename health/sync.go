package health

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/geodnsd/geodnsd/config"
)

// compareJSON decodes a JSON document and compares the value at the check's
// json_path with its value: nil error means in sync. The detail (or the
// error) names the observed value.
func compareJSON(r io.Reader, c *config.Check) (detail string, err error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("body is not JSON: %w", err)
	}
	got, err := lookup(doc, c.JSONPath)
	if err != nil {
		return "", err
	}
	ok, err := compare(got, c.Op, c.Value)
	obs := fmt.Sprintf("%s = %s", c.JSONPath.Text, show(got))
	if err != nil {
		return "", fmt.Errorf("%s: %w", obs, err)
	}
	if !ok {
		return "", fmt.Errorf("%s, want %s %s", obs, c.Op, show(c.Value))
	}
	return fmt.Sprintf("%s (%s %s)", obs, c.Op, show(c.Value)), nil
}

func lookup(doc any, p config.JSONPath) (any, error) {
	cur := doc
	for i, s := range p.Steps {
		switch v := cur.(type) {
		case map[string]any:
			if s.IsIndex {
				return nil, fmt.Errorf("%s: [%d] applied to an object", p.Text, s.Index)
			}
			next, ok := v[s.Key]
			if !ok {
				return nil, fmt.Errorf("%s: no key %q", p.Text, s.Key)
			}
			cur = next
		case []any:
			if !s.IsIndex {
				return nil, fmt.Errorf("%s: key %q applied to an array", p.Text, s.Key)
			}
			if s.Index >= len(v) {
				return nil, fmt.Errorf("%s: index %d out of range (length %d)", p.Text, s.Index, len(v))
			}
			cur = v[s.Index]
		default:
			return nil, fmt.Errorf("%s: step %d applied to %s", p.Text, i+1, show(cur))
		}
	}
	return cur, nil
}

func compare(got any, op config.CompareOp, want any) (bool, error) {
	switch w := want.(type) {
	case int64, float64:
		n, ok := got.(json.Number)
		if !ok {
			return false, fmt.Errorf("not a number")
		}
		g, err := n.Float64()
		if err != nil {
			return false, err
		}
		wf := toFloat(w)
		switch op {
		case "==":
			return g == wf, nil
		case "!=":
			return g != wf, nil
		case "<":
			return g < wf, nil
		case "<=":
			return g <= wf, nil
		case ">":
			return g > wf, nil
		case ">=":
			return g >= wf, nil
		}
	case string:
		g, ok := got.(string)
		if !ok {
			return false, fmt.Errorf("not a string")
		}
		return (g == w) == (op == "=="), nil
	case bool:
		g, ok := got.(bool)
		if !ok {
			return false, fmt.Errorf("not a boolean")
		}
		return (g == w) == (op == "=="), nil
	}
	return false, fmt.Errorf("cannot compare with %T using %s", want, op)
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(clip(x, 100))
	case json.Number:
		return x.String()
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprint(x)
	}
}
