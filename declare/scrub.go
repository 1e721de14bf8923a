package declare

import (
	"path/filepath"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// secretsDoc is the part of a file that names its secrets, decoded
// leniently: whatever else the file gets wrong, its secrets can still be
// read, so that the error that says what is wrong never quotes one (a
// secret's value pasted into the wrong field, `restart: <token>`).
type secretsDoc struct {
	Boxes map[string]struct {
		Secrets map[string]secretDoc `yaml:"secrets"`
	} `yaml:"boxes"`
}

// fileSecretValues reads, as far as it can, the values of every secret the
// file at absPath (content data) names; sources that cannot be read are
// skipped. It is for scrubbing ParseFile's errors, not for the boxes.
func fileSecretValues(absPath string, data []byte, opts Options) []string {
	ast, err := parser.ParseBytes(data, 0)
	if err != nil || len(ast.Docs) != 1 || ast.Docs[0].Body == nil {
		return nil
	}
	var doc secretsDoc
	if err := yaml.NodeToValue(ast.Docs[0].Body, &doc); err != nil {
		return nil
	}
	var values []string
	for _, box := range doc.Boxes {
		for _, src := range box.Secrets {
			switch {
			case src.Env != "" && src.File != "":
			case src.Env != "":
				if v, ok := opts.LookupEnv(src.Env); ok {
					values = append(values, v)
				}
			case src.File != "":
				path := src.File
				if !filepath.IsAbs(path) {
					path = filepath.Join(filepath.Dir(absPath), path)
				}
				if v, err := opts.ReadSecretFile(path); err == nil {
					values = append(values, v)
				}
			}
		}
	}
	return values
}
