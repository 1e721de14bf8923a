package declare

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml"

	"github.com/boxsup/boxsup/messages"
)

// pos is a place in a file, for error messages: "boxes.yaml:12:5".
type pos struct {
	file      string
	line, col int
}

func (p pos) String() string {
	switch {
	case p.line == 0:
		return p.file
	case p.col == 0:
		return fmt.Sprintf("%s:%d", p.file, p.line)
	}
	return fmt.Sprintf("%s:%d:%d", p.file, p.line, p.col)
}

// errorAt returns messages.ErrBadSpec naming the place of the fault.
func errorAt(p pos, format string, args ...any) error {
	return messages.Errorf(messages.ErrBadSpec, "%s: %s", p, fmt.Sprintf(format, args...))
}

// nodeError is an error a custom decoder found at a place in the file.
type nodeError struct {
	line, col int
	msg       string
}

func (e *nodeError) Error() string { return e.msg }

// yamlError turns an error of the YAML library or of a custom decoder into
// one that names the file, line and column, without the library's source
// excerpt (which could quote a line of the file into a log).
func yamlError(file string, err error) error {
	var ne *nodeError
	if errors.As(err, &ne) {
		return errorAt(pos{file, ne.line, ne.col}, "%s", ne.msg)
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := pos{file: file}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.line, p.col = tk.Position.Line, tk.Position.Column
		}
		return errorAt(p, "%s", ye.GetMessage())
	}
	return errorAt(pos{file: file}, "%v", err)
}
