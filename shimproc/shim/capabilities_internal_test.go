package shim

import (
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// Every optional spec field is decided: honoured (with how) or refused
// (with why), never both, never forgotten.
func TestEveryOptionalFieldIsDecided(t *testing.T) {
	t.Parallel()
	for _, f := range messages.OptionalFields() {
		fs, yes := honoured[f]
		why, no := refused[f]
		switch {
		case yes == no:
			t.Errorf("%s: honoured %v, refused %v; want exactly one", f, yes, no)
		case yes && fs.How == "":
			t.Errorf("%s: honoured without saying how", f)
		case no && why == "":
			t.Errorf("%s: refused without saying why", f)
		}
	}
	if len(honoured)+len(refused) != len(messages.OptionalFields()) {
		t.Errorf("%d fields decided, %d optional fields exist", len(honoured)+len(refused), len(messages.OptionalFields()))
	}
}
