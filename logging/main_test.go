package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestLogger returns a logger from New at trace level writing into buf.
func newTestLogger(t *testing.T, format string) (*logrus.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(Options{Level: "trace", Format: format, Out: &buf})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, &buf
}

// jsonLines decodes every line of JSON log output.
func jsonLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Bytes())
		}
		lines = append(lines, m)
	}
	return lines
}
