package boxlog

import "testing"

func TestParseRecord(t *testing.T) {
	stamp := "2026-01-02T03:04:05.123456789Z"
	for _, c := range []struct {
		line    string
		stream  Stream
		partial bool
		text    string
	}{
		{stamp + " stdout F hello world", Stdout, false, "hello world"},
		{stamp + " stderr P part", Stderr, true, "part"},
		{stamp + " stdout F ", Stdout, false, ""},
		{stamp + " stdout F", Stdout, false, ""},
		{stamp + " stdout F:x,y tagged", Stdout, false, "tagged"},
		{"2026-01-02T03:04:05Z stdout F short time", Stdout, false, "short time"},
		{stamp + " stdin F not a stream", "", false, stamp + " stdin F not a stream"},
		{stamp + " stdout X bad tag", "", false, stamp + " stdout X bad tag"},
		{"plain text from an older shim", "", false, "plain text from an older shim"},
		{"", "", false, ""},
		{"2026/01/02T03:04:05.1Z stdout F slashes", "", false, "2026/01/02T03:04:05.1Z stdout F slashes"},
	} {
		r := parseRecord([]byte(c.line))
		if r.stream != c.stream || r.partial != c.partial || string(r.text) != c.text || (r.stamp == nil) != (c.stream == "") {
			t.Errorf("%q: got stream %q partial %v text %q stamp %q", c.line, r.stream, r.partial, r.text, r.stamp)
		}
	}
}
