package logging

import (
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestEmitRedactedConfigTrace(t *testing.T) {
	config := []byte(`{"version":1,"engine":"process","box_id":"web","guest_entrypoint":{"executable":"/bin/true"},"secrets":[{"name":"TOKEN","value":"tok-CONFIG-SENTINEL-91"}]}`)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			l, buf := newTestLogger(t, format)
			EmitRedactedConfigTrace(l.WithField("component", "spawn"), "process", "web", config)
			out := buf.String()
			for _, leak := range []string{"tok-CONFIG-SENTINEL-91", "guest_entrypoint", "/bin/true", "secrets"} {
				if strings.Contains(out, leak) {
					t.Errorf("trace output contains %q from the config JSON: %s", leak, out)
				}
			}
			if format == "json" {
				lines := jsonLines(t, buf.Bytes())
				if len(lines) != 1 {
					t.Fatalf("want 1 line, got %d", len(lines))
				}
				m := lines[0]
				if m["level"] != "trace" || m["engine"] != "process" || m["box_id"] != "web" || m["json_bytes"] != float64(len(config)) {
					t.Errorf("trace line = %v", m)
				}
				allowed := map[string]bool{"level": true, "msg": true, "time": true, "engine": true, "box_id": true, "json_bytes": true, "component": true}
				for k := range m {
					if !allowed[k] {
						t.Errorf("unexpected field %q in %v", k, m)
					}
				}
			}
		})
	}

	// Not at all above trace level.
	l, buf := newTestLogger(t, "text")
	l.SetLevel(logrus.ErrorLevel)
	EmitRedactedConfigTrace(l, "process", "web", config)
	if buf.Len() != 0 {
		t.Errorf("trace emitted at error level: %s", buf)
	}
	EmitRedactedConfigTrace(nil, "process", "web", config) // must not panic
}
