package actors_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeExampleIsRun: the Go code of README.md's "Embedding" section is
// exactly what Example_readme runs, so the README cannot drift from code
// that works.
func TestReadmeExampleIsRun(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	i := strings.Index(section, "## Embedding")
	if i < 0 {
		t.Fatal("README.md has no Embedding section")
	}
	section = section[i:]
	begin := strings.Index(section, "```go\n")
	end := strings.Index(section[begin+6:], "```")
	if begin < 0 || end < 0 {
		t.Fatal("the Embedding section has no go code block")
	}
	want := lines(section[begin+6 : begin+6+end])

	src, err := os.ReadFile("example_readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	b, e := strings.Index(body, "// README begins\n"), strings.Index(body, "// README ends\n")
	if b < 0 || e < b {
		t.Fatal("example_readme_test.go lacks its README markers")
	}
	got := lines(body[b+len("// README begins\n") : e])
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("README.md's example and Example_readme differ:\nREADME:\n%s\n\nexample:\n%s",
			strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// lines returns the non-empty lines of s without their indentation.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
