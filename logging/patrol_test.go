package logging

// The patrol: an AST check over every non-test Go file of the module that
// fails when a logging call takes the raw spec JSON or a spec value as an
// argument. It is a heuristic on names and declared types (go/parser only; no
// type checker, which would need every dependency's source), tuned to err on
// the side of reporting:
//
//   - a logging call is a method call named like a logrus or slog method
//     (Trace..Panic with f/ln variants, Log*, With*, *Context), any call into
//     log/slog, log.Print*/Fatal*/Panic*, and fmt.Print*/Fprint*/Sprint*/
//     Errorf (formatted text and errors end up in logs too);
//   - an argument is suspect when, looking through parentheses, &, *,
//     conversions, indexing, slicing, binary operators and composite literal
//     elements, it names something whose name looks like raw spec/config JSON
//     (specJSON, config_json, rawSpec, ...), or something declared with a spec
//     type: messages.InstanceSpec or messages.StartBox, a pointer, slice or
//     map of them, or any struct type of the module that holds one (found by
//     fixpoint), including struct fields and functions returning one.
//
// len(specJSON) is fine: the patrol does not look inside other calls, each
// of which is checked on its own if it is a logging call.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// moduleRoot walks up from the package directory to the go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

// parseModule parses every non-test .go file under root, skipping hidden
// directories, testdata and vendor.
func parseModule(t *testing.T, fset *token.FileSet, root string) []*ast.File {
	t.Helper()
	var files []*ast.File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("parse %s: %v", path, err)
			return nil
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestPatrolNoSpecInLogs(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	files := parseModule(t, fset, root)
	// Sanity: the walk must at least see this package and messages/.
	var sawSpec, sawLogging bool
	for _, f := range files {
		name := fset.Position(f.Pos()).Filename
		sawSpec = sawSpec || strings.HasSuffix(name, filepath.Join("messages", "spec.go"))
		sawLogging = sawLogging || strings.HasSuffix(name, filepath.Join("logging", "trace.go"))
	}
	if !sawSpec || !sawLogging {
		t.Fatalf("the walk from %s missed messages/spec.go or logging/trace.go (%d files)", root, len(files))
	}
	for _, f := range patrol(fset, files) {
		t.Errorf("%v", f)
	}
	t.Logf("patrolled %d files under %s", len(files), root)
}

// patrolFixture breaks the rule on every line marked "// want" and keeps it
// on the others.
const patrolFixture = `package fixture

import (
	"fmt"
	stdlog "log"
	"log/slog"
	"os"

	"github.com/boxsup/boxsup/messages"
	"github.com/sirupsen/logrus"
)

type request struct {
	Spec     messages.InstanceSpec
	SpecJSON []byte
	Name     string
}

type wrapper struct{ req *request }

var globalSpec messages.StartBox

func buildSpec() messages.InstanceSpec { return messages.InstanceSpec{} }

func bad(l *logrus.Logger, sl *slog.Logger, specJSON []byte, spec messages.InstanceSpec, req *request, w wrapper, msg any, rawSpec string, specBytes []byte) {
	l.Debugf("spec: %s", specJSON)                   // want
	l.WithField("spec", string(specJSON)).Info("x")  // want
	l.WithFields(logrus.Fields{"s": spec}).Info("x") // want
	l.Infof("%+v", req)                              // want
	l.Info(req.Spec)                                 // want
	l.Trace(req.SpecJSON[:10])                       // want
	fmt.Println(w)                                   // want
	fmt.Fprintf(os.Stderr, "%v", &spec)              // want
	stdlog.Printf("%v", buildSpec())                 // want
	slog.Info("start", "spec", spec)                 // want
	sl.Debug("start", "spec", *req)                  // want
	_ = fmt.Errorf("bad spec: %s", rawSpec)          // want
	_ = fmt.Sprintf("%s", "prefix "+rawSpec)         // want
	l.Warn(messages.StartBox{ID: "x"})               // want
	l.Print(globalSpec)                              // want
	l.Debug(specBytes)                               // want
	cfg := messages.InstanceSpec{}
	l.Error(cfg) // want
	specs := []messages.InstanceSpec{cfg}
	for _, s := range specs {
		l.Info(s) // want
	}
	l.Info(specs[0]) // want
	switch m := msg.(type) {
	case *messages.StartBox:
		l.Info(m) // want
	case string:
		l.Info(m)
	}
	var later messages.InstanceSpec
	l.WithError(fmt.Errorf("x")).Info(later) // want
}

func good(l *logrus.Logger, specJSON []byte, spec messages.InstanceSpec, specJSONPath string, req *request, maxSpecBytes int) {
	l.Debugf("spec larger than %d bytes", maxSpecBytes)
	l.WithField("json_bytes", len(specJSON)).Trace("x")
	l.WithField("box_id", spec.BoxID).Info("x")
	l.Info(specJSONPath)
	l.Info(req.Name)
	_, _ = os.Stdout.Write(specJSON)
	{
		spec := "shadowed"
		l.Info(spec)
	}
	fmt.Println(len(spec.Secrets))
}
`

func TestPatrolCatchesViolations(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fixture.go", patrolFixture, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i, line := range strings.Split(patrolFixture, "\n") {
		if strings.HasSuffix(strings.TrimSpace(line), "// want") {
			want = append(want, i+1)
		}
	}
	findings := patrol(fset, []*ast.File{f})
	var got []int
	for _, fd := range findings {
		if !slices.Contains(got, fd.pos.Line) {
			got = append(got, fd.pos.Line)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("patrol flagged lines %v, want %v", got, want)
		for _, fd := range findings {
			t.Logf("  %v", fd)
		}
	}
	if len(findings) == 0 {
		t.Fatal("the patrol found nothing in a fixture full of violations")
	}
	if s := findings[0].String(); !strings.Contains(s, "fixture.go:") || !strings.Contains(s, "specJSON") {
		t.Errorf("finding %q does not name the file and the argument", s)
	}
}
