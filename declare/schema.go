package declare

import (
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// fileDoc is the YAML document: every field of every struct below is a key
// the file may hold, and any other key is an error with its line.
type fileDoc struct {
	Version int               `yaml:"version"`
	Boxes   map[string]boxDoc `yaml:"boxes"`
}

// boxDoc is one box as written.
type boxDoc struct {
	Command      []string             `yaml:"command"`
	Engine       string               `yaml:"engine"`
	Env          map[string]string    `yaml:"env"`
	Secrets      map[string]secretDoc `yaml:"secrets"`
	WorkDir      string               `yaml:"work_dir"`
	Restart      string               `yaml:"restart"`
	MaxRestarts  *int                 `yaml:"max_restarts"`
	StopTimeout  durationDoc          `yaml:"stop_timeout"`
	ReadyTimeout durationDoc          `yaml:"ready_timeout"`
	CPUs         uint8                `yaml:"cpus"`
	MemoryMiB    uint32               `yaml:"memory_mib"`
	Labels       map[string]string    `yaml:"labels"`
	DependsOn    dependsOnDoc         `yaml:"depends_on"`
	HealthCheck  *healthDoc           `yaml:"healthcheck"`
	ReadyWhen    string               `yaml:"ready_when"`
}

// secretDoc says where a secret's value comes from: boxsup's environment or
// a file. There is deliberately no inline value.
type secretDoc struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// healthDoc is a health check: exactly one of the probes, and its timing.
type healthDoc struct {
	Exec          []string       `yaml:"exec"`
	TCP           string         `yaml:"tcp"`
	HTTP          string         `yaml:"http"`
	Unix          string         `yaml:"unix"`
	Interval      durationDoc    `yaml:"interval"`
	Timeout       durationDoc    `yaml:"timeout"`
	Retries       int            `yaml:"retries"`
	StartPeriod   durationDoc    `yaml:"start_period"`
	StartInterval durationDoc    `yaml:"start_interval"`
	HTTPStatus    *httpStatusDoc `yaml:"http_status"`
}

// httpStatusDoc is the range of HTTP statuses an http check accepts.
type httpStatusDoc struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// dependencyDoc is the long form of one dependency.
type dependencyDoc struct {
	Condition string `yaml:"condition"`
}

// dependsOnDoc accepts the short form (a list of box IDs, each waited for
// until ready) and the long form (a mapping of box ID to {condition}), as
// compose files do.
type dependsOnDoc struct {
	deps      map[string]dependencyDoc
	line, col int
}

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (d *dependsOnDoc) UnmarshalYAML(n ast.Node) error {
	d.line, d.col = n.GetToken().Position.Line, n.GetToken().Position.Column
	if n.Type() == ast.SequenceType {
		var ids []string
		if err := yaml.NodeToValue(n, &ids, yaml.DisallowUnknownField()); err != nil {
			return err
		}
		d.deps = make(map[string]dependencyDoc, len(ids))
		for _, id := range ids {
			if _, dup := d.deps[id]; dup {
				return &nodeError{line: d.line, col: d.col, msg: "depends_on: " + id + " is listed twice"}
			}
			d.deps[id] = dependencyDoc{}
		}
		return nil
	}
	return yaml.NodeToValue(n, &d.deps, yaml.DisallowUnknownField())
}

// durationDoc is a Go duration written as text ("10s", "1m30s").
type durationDoc struct {
	d   time.Duration
	set bool
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: an unparsable duration is
// an error at its place.
func (d *durationDoc) UnmarshalYAML(n ast.Node) error {
	tk := n.GetToken()
	s, ok := n.(*ast.StringNode)
	if !ok {
		return &nodeError{line: tk.Position.Line, col: tk.Position.Column,
			msg: "want a duration such as 10s or 1m30s, found " + tk.Value}
	}
	v, err := time.ParseDuration(s.Value)
	if err != nil || v < 0 {
		return &nodeError{line: tk.Position.Line, col: tk.Position.Column,
			msg: "want a non-negative duration such as 10s or 1m30s, found " + s.Value}
	}
	d.d, d.set = v, true
	return nil
}
