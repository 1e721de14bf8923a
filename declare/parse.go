package declare

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// FormatVersion is the version of the file format this package reads.
const FormatVersion = 1

// defaultGuestPath is a declared box's PATH when its env sets none: the
// guest's environment comes from the file alone, not from whoever applies it.
const defaultGuestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BoxesFile is a validated boxes file.
type BoxesFile struct {
	// Path is the file's absolute path.
	Path string
	// ApplyID identifies the file in its boxes' LabelApplyID.
	ApplyID string
	// Declared are the boxes, in start order: by wave, then by ID.
	Declared []*DeclaredBox
	// Waves groups the indexes of Declared: every box of wave k depends only
	// on boxes of earlier waves.
	Waves [][]int
}

// Lookup returns the box with ID id, or nil.
func (f *BoxesFile) Lookup(id string) *DeclaredBox {
	for _, b := range f.Declared {
		if b.ID() == id {
			return b
		}
	}
	return nil
}

// SecretValues returns every secret value of the file, for registration with
// the log redactor.
func (f *BoxesFile) SecretValues() []string {
	var out []string
	for _, b := range f.Declared {
		out = append(out, b.Start.Spec.SecretValues()...)
	}
	return out
}

// Options are the outside world a file is resolved against.
type Options struct {
	// LookupEnv reads a secret's environment variable; nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadSecretFile reads a secret file (an absolute path); nil means
	// ReadSecretFile.
	ReadSecretFile func(path string) (string, error)
}

// ParseFile validates the file at absolute path absPath whose content is data.
// Every error is messages.ErrBadSpec and names the file and, where the fault
// has one, the line: an unknown key, a duplicate box, a bad value, an
// unknown dependency, a dependency cycle (naming the cycle). No error quotes
// the value of a secret the file names, wherever the fault is.
func ParseFile(absPath string, data []byte, opts Options) (_ *BoxesFile, err error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadSecretFile == nil {
		opts.ReadSecretFile = ReadSecretFile
	}
	defer func() {
		if err != nil {
			err = messages.RedactSecrets(err, fileSecretValues(absPath, data, opts))
		}
	}()
	name := filepath.Base(absPath)
	ast, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	if len(ast.Docs) != 1 || ast.Docs[0].Body == nil {
		return nil, errorAt(pos{file: name}, "want one YAML document with a boxes mapping")
	}
	var doc fileDoc
	if err := yaml.NodeToValue(ast.Docs[0].Body, &doc, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(name, err)
	}
	at := indexPositions(name, ast.Docs[0].Body)
	if doc.Version != 0 && doc.Version != FormatVersion {
		return nil, errorAt(pos{file: name}, "version %d is not supported (want %d)", doc.Version, FormatVersion)
	}
	if len(doc.Boxes) == 0 {
		return nil, errorAt(pos{file: name}, "no boxes declared")
	}
	dir := filepath.Dir(absPath)
	f := &BoxesFile{Path: absPath, ApplyID: applyIDOf(absPath)}
	for _, id := range slices.Sorted(maps.Keys(doc.Boxes)) {
		b, err := buildBox(id, doc.Boxes[id], dir, at, opts)
		if err != nil {
			return nil, err
		}
		f.Declared = append(f.Declared, b)
	}
	if err := f.order(at); err != nil {
		return nil, err
	}
	return f, nil
}

// buildBox validates one declaration into a Box. Once its secrets are
// read, no error it returns quotes one: a field that holds a secret's value
// is refused by name (CheckSecretsConfined), and every error is scrubbed of
// the values besides (a malformed health check address, say, is quoted).
func buildBox(id string, d boxDoc, dir string, at positions, opts Options) (built *DeclaredBox, err error) {
	var secretValues []string
	defer func() { err = messages.RedactSecrets(err, secretValues) }()
	where := func(field string) pos { return at.field(id, field) }
	if err := layout.ValidateID(id); err != nil {
		return nil, errorAt(at.box(id), "box %q: %v", id, err)
	}
	if len(d.Command) == 0 || d.Command[0] == "" {
		return nil, errorAt(at.box(id), "box %s: command: must name a program", id)
	}
	engine := messages.EngineProcess
	if d.Engine != "" {
		engine = messages.EngineKind(d.Engine)
	}
	env := []string{}
	if _, ok := d.Env["PATH"]; !ok {
		env = append(env, "PATH="+defaultGuestPath)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Env)) {
		env = append(env, k+"="+d.Env[k])
	}
	workDir := dir
	if d.WorkDir != "" {
		workDir = d.WorkDir
		if !filepath.IsAbs(workDir) {
			workDir = filepath.Join(dir, workDir)
		}
	}
	b := &DeclaredBox{Start: messages.StartBox{
		ID: id,
		Spec: messages.InstanceSpec{
			Engine:    engine,
			CPUs:      d.CPUs,
			MemoryMiB: d.MemoryMiB,
			GuestEntrypoint: messages.Entrypoint{
				Executable: d.Command[0],
				Args:       d.Command[1:],
				Env:        env,
				WorkDir:    workDir,
			},
			Detach: true, // a declared box outlives the command that applied it
		},
		StopTimeout:  d.StopTimeout.d,
		ReadyTimeout: d.ReadyTimeout.d,
	}}
	if d.Restart != "" {
		mode, err := messages.ParseRestartMode(d.Restart)
		if err != nil {
			return nil, errorAt(where("restart"), "box %s: restart: %q is not no, on-failure, always or on-unhealthy", id, d.Restart)
		}
		b.Start.Restart.Mode = mode
	}
	if d.MaxRestarts != nil {
		if *d.MaxRestarts == 0 {
			return nil, errorAt(where("max_restarts"), "box %s: max_restarts: 0 would mean the default; leave it out, or give a positive number (negative: unlimited)", id)
		}
		b.Start.Restart.MaxRestarts = *d.MaxRestarts
	}
	if err := resolveSecrets(b, d.Secrets, dir, where("secrets"), opts); err != nil {
		return nil, err
	}
	secretValues = b.Start.Spec.SecretValues()
	if err := setLabels(b, d.Labels, where("labels")); err != nil {
		return nil, err
	}
	for _, dep := range slices.Sorted(maps.Keys(d.DependsOn.deps)) {
		cond := Condition(d.DependsOn.deps[dep].Condition)
		switch cond {
		case "":
			cond = ConditionReady
		case ConditionReady, ConditionHealthy:
		default:
			return nil, errorAt(where("depends_on"), "box %s: depends_on %s: condition %q is not ready or healthy", id, dep, cond)
		}
		if dep == id {
			return nil, errorAt(where("depends_on"), "box %s: depends_on: a box cannot depend on itself", id)
		}
		b.DependsOn = append(b.DependsOn, Dependency{ID: dep, Condition: cond})
	}
	if d.HealthCheck != nil {
		hc, err := buildHealthCheck(id, d.HealthCheck, where("healthcheck"))
		if err != nil {
			return nil, err
		}
		if err := hc.ValidateFor(&b.Start.Spec); err != nil {
			return nil, errorAt(where("healthcheck"), "box %s: %v", id, err)
		}
		b.HealthCheck = hc
		b.Start.HealthCheck = hc
	}
	b.Start.ReadyWhen = messages.ReadyCondition(d.ReadyWhen)
	if err := b.Start.ReadyWhen.Validate(b.HealthCheck); err != nil {
		return nil, errorAt(where("ready_when"), "box %s: ready_when: %v", id, err)
	}
	if b.Start.Restart.Mode == messages.RestartOnUnhealthy && b.HealthCheck == nil {
		return nil, errorAt(where("restart"), "box %s: restart: on-unhealthy needs a healthcheck", id)
	}
	// What the supervisor would refuse, refused here with the line.
	spec := b.Start.Spec
	spec.BoxID = id
	whole := b.Start
	whole.Spec = spec
	whole.Labels = b.UserLabels
	if err := whole.CheckSecretsConfined(); err != nil {
		return nil, errorAt(at.box(id), "box %s: %v", id, err)
	}
	if err := spec.Validate(); err != nil {
		return nil, errorAt(at.box(id), "box %s: %v", id, err)
	}
	if err := b.Start.Restart.Validate(); err != nil {
		return nil, errorAt(where("restart"), "box %s: %v", id, err)
	}
	b.digests()
	return b, nil
}

// setLabels validates the file's labels: Kubernetes syntax, nothing under
// the reserved prefix.
func setLabels(b *DeclaredBox, set map[string]string, at pos) error {
	if len(set) == 0 {
		return nil
	}
	for k := range set {
		if isReservedLabel(k) {
			return errorAt(at, "box %s: label %s: the prefix %s is reserved for boxsup", b.ID(), k, reservedLabelPrefix)
		}
	}
	if err := labels.Validate(set); err != nil {
		return errorAt(at, "box %s: %v", b.ID(), err)
	}
	b.UserLabels = set
	return nil
}

// buildHealthCheck turns a declared check into the supervisor's, checked
// by the same rules the supervisor applies (messages.HealthCheck.Validate):
// exactly one probe, timing within bounds.
func buildHealthCheck(id string, d *healthDoc, at pos) (*messages.HealthCheck, error) {
	hc := &messages.HealthCheck{Exec: d.Exec, TCP: d.TCP, HTTP: d.HTTP, Unix: d.Unix,
		Interval: d.Interval.d, Timeout: d.Timeout.d, Retries: d.Retries,
		StartPeriod: d.StartPeriod.d, StartInterval: d.StartInterval.d}
	if d.HTTPStatus != nil {
		hc.HTTPStatus = &messages.HTTPStatusRange{Min: d.HTTPStatus.Min, Max: d.HTTPStatus.Max}
	}
	if err := hc.Validate(); err != nil {
		return nil, errorAt(at, "box %s: %v", id, err)
	}
	return hc, nil
}

// describeCycle renders a cycle of box IDs: "a -> b -> c -> a".
func describeCycle(ids []string) string {
	return strings.Join(append(slices.Clone(ids), ids[0]), " -> ")
}
