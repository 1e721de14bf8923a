package declare

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Labels that Apply puts on the boxes it creates. The prefix boxsup.dev/ is
// reserved: a file may not set labels under it.
const (
	// LabelApplyID names the file that created the box: the first 20 hex
	// digits of the SHA-256 of its absolute path (a path is not a valid
	// label value).
	LabelApplyID = "boxsup.dev/apply-id"
	// LabelSpecDigest is a digest of what only a new process can change
	// (command, environment, secret sources, work directory, engine,
	// resources, ready timeout, health check): a change means replace.
	LabelSpecDigest = "boxsup.dev/spec-digest"
	// LabelConfigDigest is a digest of what can change without touching the
	// process (restart policy, stop timeout, labels): a change means update
	// in place.
	LabelConfigDigest = "boxsup.dev/config-digest"

	reservedLabelPrefix = "boxsup.dev/"
)

// Condition is what a box waits for in a dependency before it starts.
type Condition string

// Dependency conditions.
const (
	// ConditionReady: the dependency's Start returned ready (the shim's
	// ready byte, or its ready socket accepted).
	ConditionReady Condition = "ready"
	// ConditionHealthy: the dependency's health check passed once. Needs
	// a backend with health checks.
	ConditionHealthy Condition = "healthy"
)

// Dependency is one box another waits for.
type Dependency struct {
	ID        string
	Condition Condition
}

// SecretSource says where a secret variable's value was read from, for
// plans and digests: "env NAME" or "file PATH". The value is in
// Start.Spec.Secrets only.
type SecretSource struct {
	Name string
	From string
}

// DeclaredBox is one validated declaration.
type DeclaredBox struct {
	// Start is the request that creates the box: a detached box (it
	// outlives apply) with its secrets resolved. Never log it.
	Start messages.StartBox
	// UserLabels are the labels the file sets (validated, none reserved).
	UserLabels map[string]string
	// DependsOn lists the boxes this one waits for, sorted by ID.
	DependsOn []Dependency
	// HealthCheck is the declared check, or nil (also in
	// Start.HealthCheck, with Start.ReadyWhen).
	HealthCheck *messages.HealthCheck
	// Secrets lists where each secret came from, sorted by name.
	Secrets []SecretSource
	// SpecDigest and ConfigDigest summarise the declaration (see
	// LabelSpecDigest and LabelConfigDigest). Secret values are not part of
	// them: a changed value behind the same source is not a change.
	SpecDigest, ConfigDigest string
}

// ID returns the box's ID.
func (b *DeclaredBox) ID() string { return b.Start.ID }

// Labels returns every label the box is created with: its own and Apply's
// (the apply ID and the digests).
func (b *DeclaredBox) Labels(applyID string) map[string]string {
	out := maps.Clone(b.UserLabels)
	if out == nil {
		out = map[string]string{}
	}
	out[LabelApplyID] = applyID
	out[LabelSpecDigest] = b.SpecDigest
	out[LabelConfigDigest] = b.ConfigDigest
	return out
}

// digests computes SpecDigest and ConfigDigest from the declaration.
func (b *DeclaredBox) digests() {
	e := b.Start.Spec.GuestEntrypoint
	spec := struct {
		Engine       messages.EngineKind
		Executable   string
		Args         []string
		Env          []string
		WorkDir      string
		Secrets      []SecretSource
		CPUs         uint8
		MemoryMiB    uint32
		ReadyTimeout time.Duration
		HealthCheck  *messages.HealthCheck
		ReadyWhen    messages.ReadyCondition `json:",omitempty"`
	}{b.Start.Spec.Engine, e.Executable, e.Args, e.Env, e.WorkDir, b.Secrets,
		b.Start.Spec.CPUs, b.Start.Spec.MemoryMiB, b.Start.ReadyTimeout, b.HealthCheck, b.Start.ReadyWhen}
	config := struct {
		Restart     messages.RestartPolicy
		StopTimeout time.Duration
		Labels      [][2]string
	}{b.Start.Restart, b.Start.StopTimeout, sortedPairs(b.UserLabels)}
	b.SpecDigest, b.ConfigDigest = digest(spec), digest(config)
}

// digest is the first 32 hex digits of the SHA-256 of v's JSON (maps are
// avoided in v, so the encoding is canonical).
func digest(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("declare: digest of an unencodable value: " + err.Error())
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// applyIDOf returns the apply ID of a file at absolute path.
func applyIDOf(absPath string) string {
	sum := sha256.Sum256([]byte(absPath))
	return hex.EncodeToString(sum[:10])
}

// sortedPairs returns m's entries sorted by key.
func sortedPairs(m map[string]string) [][2]string {
	keys := slices.Sorted(maps.Keys(m))
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, m[k]}
	}
	return out
}

// isReservedLabel reports a label key under boxsup.dev/.
func isReservedLabel(key string) bool { return strings.HasPrefix(key, reservedLabelPrefix) }
