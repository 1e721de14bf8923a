package logging

// The patrol's checker; see patrol_test.go for what it enforces and why.

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"regexp"
	"strconv"
	"strings"
)

// rawJSONName matches identifiers that look like raw spec or config JSON:
// specJSON, config_json, cfgRaw, rawSpec, rawConfigJSON, and specBytes as a
// whole name. Anchored so that specJSONPath, configJSONLen or maxSpecBytes
// (sizes and paths) do not match.
var rawJSONName = regexp.MustCompile(`(?i)((spec|config|cfg)_?(json|raw)$|^(spec|config|cfg)_?bytes$|raw_?(spec|config|cfg)(_?json)?$)`)

// rootSpecTypes are the spec types themselves.
var rootSpecTypes = []string{"InstanceSpec", "StartBox"}

// logMethodNames are method names treated as logging calls on any receiver.
var logMethodNames = func() map[string]bool {
	m := map[string]bool{}
	for _, base := range []string{"Trace", "Debug", "Info", "Print", "Warn", "Warning", "Error", "Fatal", "Panic", "Log"} {
		m[base], m[base+"f"], m[base+"ln"] = true, true, true
	}
	for _, n := range []string{
		"LogAttrs", "DebugContext", "InfoContext", "WarnContext", "ErrorContext",
		"With", "WithField", "WithFields", "WithError", "WithGroup", "WithAttrs",
	} {
		m[n] = true
	}
	return m
}()

type finding struct {
	pos  token.Position
	call string
	arg  string
	why  string
}

func (f finding) String() string {
	return fmt.Sprintf("%s: %s takes %s, which %s", f.pos, f.call, f.arg, f.why)
}

// patroller holds what the first pass learned about the whole module.
type patroller struct {
	fset       *token.FileSet
	specTypes  map[string]bool // type names that are, or hold, a spec
	specFields map[string]bool // struct field names declared with such a type
	specFuncs  map[string]bool // functions and methods whose first result is one
}

// patrol checks files (all of one module) and returns the findings.
func patrol(fset *token.FileSet, files []*ast.File) []finding {
	p := &patroller{fset: fset, specTypes: map[string]bool{}, specFields: map[string]bool{}, specFuncs: map[string]bool{}}
	for _, n := range rootSpecTypes {
		p.specTypes[n] = true
	}
	p.learn(files)
	var out []finding
	for _, f := range files {
		out = append(out, p.checkFile(f)...)
	}
	return out
}

// learn finds, to a fixpoint, the struct types holding a spec, then the
// fields and functions of such types.
func (p *patroller) learn(files []*ast.File) {
	for changed := true; changed; {
		changed = false
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok || p.specTypes[ts.Name.Name] {
					return true
				}
				if st, ok := ts.Type.(*ast.StructType); ok {
					for _, fld := range st.Fields.List {
						if p.isSpecType(fld.Type) {
							p.specTypes[ts.Name.Name], changed = true, true
							break
						}
					}
				}
				return true
			})
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.StructType:
				for _, fld := range x.Fields.List {
					if p.isSpecType(fld.Type) {
						for _, name := range fld.Names {
							p.specFields[name.Name] = true
						}
					}
				}
			case *ast.FuncDecl:
				if r := x.Type.Results; r != nil && len(r.List) > 0 && p.isSpecType(r.List[0].Type) {
					p.specFuncs[x.Name.Name] = true
				}
			}
			return true
		})
	}
}

// isSpecType reports whether a type expression is, or holds, a spec.
func (p *patroller) isSpecType(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return p.specTypes[x.Name]
	case *ast.SelectorExpr:
		return p.specTypes[x.Sel.Name]
	case *ast.StarExpr:
		return p.isSpecType(x.X)
	case *ast.ParenExpr:
		return p.isSpecType(x.X)
	case *ast.ArrayType:
		return p.isSpecType(x.Elt)
	case *ast.MapType:
		return p.isSpecType(x.Value)
	case *ast.ChanType:
		return p.isSpecType(x.Value)
	}
	return false
}

// scope maps names declared in a block to whether they hold a spec.
type scope struct {
	parent *scope
	vars   map[string]bool
}

func (s *scope) declare(name string, spec bool) {
	if name != "_" {
		s.vars[name] = spec
	}
}

func (s *scope) holdsSpec(name string) bool {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v
		}
	}
	return false
}

// opensScope reports whether n starts a block of declarations.
func opensScope(n ast.Node) bool {
	switch n.(type) {
	case *ast.FuncDecl, *ast.FuncLit, *ast.BlockStmt, *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt,
		*ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.CaseClause, *ast.CommClause:
		return true
	}
	return false
}

// imports maps the paths of the packages the patrol cares about to their
// names in one file.
type imports struct{ fmt, log, slog string }

func fileImports(f *ast.File) imports {
	var im imports
	for _, spec := range f.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		name := path[strings.LastIndexByte(path, '/')+1:]
		if spec.Name != nil {
			name = spec.Name.Name
		}
		switch path {
		case "fmt":
			im.fmt = name
		case "log":
			im.log = name
		case "log/slog":
			im.slog = name
		}
	}
	return im
}

// checkFile walks one file, tracking declarations by scope, and checks every
// logging call.
func (p *patroller) checkFile(f *ast.File) []finding {
	im := fileImports(f)
	fileScope := &scope{vars: map[string]bool{}}
	for _, d := range f.Decls { // package-level vars may be declared after use
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.VAR {
			for _, s := range gd.Specs {
				p.declareValueSpec(fileScope, s.(*ast.ValueSpec))
			}
		}
	}
	var (
		out   []finding
		stack []ast.Node
		cur   = fileScope
	)
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if opensScope(top) {
				cur = cur.parent
			}
			return true
		}
		stack = append(stack, n)
		if opensScope(n) {
			cur = &scope{parent: cur, vars: map[string]bool{}}
		}
		switch x := n.(type) {
		case *ast.FuncDecl:
			p.declareFields(cur, x.Recv)
			p.declareFields(cur, x.Type.Params)
			p.declareFields(cur, x.Type.Results)
		case *ast.FuncLit:
			p.declareFields(cur, x.Type.Params)
			p.declareFields(cur, x.Type.Results)
		case *ast.CaseClause:
			p.declareTypeSwitchVar(cur, x, stack)
		case *ast.RangeStmt:
			if x.Tok == token.DEFINE {
				if id, ok := x.Key.(*ast.Ident); ok {
					cur.declare(id.Name, false)
				}
				if id, ok := x.Value.(*ast.Ident); ok {
					cur.declare(id.Name, p.holdsSpec(x.X, cur))
				}
			}
		case *ast.AssignStmt:
			if x.Tok == token.DEFINE {
				for i, lhs := range x.Lhs {
					id, ok := lhs.(*ast.Ident)
					if !ok {
						continue
					}
					spec := len(x.Rhs) == len(x.Lhs) && p.holdsSpec(x.Rhs[i], cur)
					cur.declare(id.Name, spec)
				}
			}
		case *ast.DeclStmt:
			if gd, ok := x.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, s := range gd.Specs {
					p.declareValueSpec(cur, s.(*ast.ValueSpec))
				}
			}
		case *ast.CallExpr:
			if !p.isLoggingCall(x, im) {
				break
			}
			for _, arg := range x.Args {
				if why := p.suspect(arg, cur); why != "" {
					out = append(out, finding{
						pos:  p.fset.Position(arg.Pos()),
						call: types.ExprString(x.Fun),
						arg:  types.ExprString(arg),
						why:  why,
					})
				}
			}
		}
		return true
	})
	return out
}

func (p *patroller) declareFields(s *scope, fl *ast.FieldList) {
	if fl == nil {
		return
	}
	for _, fld := range fl.List {
		spec := p.isSpecType(fld.Type)
		for _, name := range fld.Names {
			s.declare(name.Name, spec)
		}
	}
}

func (p *patroller) declareValueSpec(s *scope, vs *ast.ValueSpec) {
	for i, name := range vs.Names {
		spec := vs.Type != nil && p.isSpecType(vs.Type)
		if vs.Type == nil && i < len(vs.Values) {
			spec = p.holdsSpec(vs.Values[i], s)
		}
		s.declare(name.Name, spec)
	}
}

// declareTypeSwitchVar declares v of "switch v := x.(type)" in a case clause:
// it holds a spec when the clause names exactly one spec type.
func (p *patroller) declareTypeSwitchVar(s *scope, cc *ast.CaseClause, stack []ast.Node) {
	if len(stack) < 3 {
		return
	}
	ts, ok := stack[len(stack)-3].(*ast.TypeSwitchStmt)
	if !ok {
		return
	}
	as, ok := ts.Assign.(*ast.AssignStmt)
	if !ok || len(as.Lhs) != 1 {
		return
	}
	if id, ok := as.Lhs[0].(*ast.Ident); ok {
		s.declare(id.Name, len(cc.List) == 1 && p.isSpecType(cc.List[0]))
	}
}

// isLoggingCall reports whether call is a logging (or text-building) call.
func (p *patroller) isLoggingCall(call *ast.CallExpr, im imports) bool {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return false
	}
	name := sel.Sel.Name
	if pkg, ok := sel.X.(*ast.Ident); ok {
		switch pkg.Name {
		case im.fmt:
			return strings.HasPrefix(name, "Print") || strings.HasPrefix(name, "Fprint") ||
				strings.HasPrefix(name, "Sprint") || name == "Errorf"
		case im.log:
			return strings.HasPrefix(name, "Print") || strings.HasPrefix(name, "Fatal") || strings.HasPrefix(name, "Panic")
		case im.slog:
			return true
		}
	}
	return logMethodNames[name]
}

// holdsSpec reports whether e evaluates to a spec (or a value holding one).
func (p *patroller) holdsSpec(e ast.Expr, s *scope) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return s.holdsSpec(x.Name)
	case *ast.SelectorExpr:
		return p.specFields[x.Sel.Name]
	case *ast.ParenExpr:
		return p.holdsSpec(x.X, s)
	case *ast.StarExpr:
		return p.holdsSpec(x.X, s)
	case *ast.UnaryExpr:
		return x.Op == token.AND && p.holdsSpec(x.X, s)
	case *ast.CompositeLit:
		return x.Type != nil && p.isSpecType(x.Type)
	case *ast.IndexExpr:
		return p.holdsSpec(x.X, s)
	case *ast.TypeAssertExpr:
		return x.Type != nil && p.isSpecType(x.Type)
	case *ast.CallExpr:
		switch fun := ast.Unparen(x.Fun).(type) {
		case *ast.Ident:
			return p.specFuncs[fun.Name]
		case *ast.SelectorExpr:
			return p.specFuncs[fun.Sel.Name]
		}
	}
	return false
}

// suspect explains why a logging call's argument must not be logged, or
// returns "".
func (p *patroller) suspect(e ast.Expr, s *scope) string {
	if p.holdsSpec(e, s) {
		return "holds a spec (InstanceSpec/StartBox, or a value containing one)"
	}
	switch x := e.(type) {
	case *ast.Ident:
		if rawJSONName.MatchString(x.Name) {
			return "looks like raw spec/config JSON"
		}
	case *ast.SelectorExpr:
		if rawJSONName.MatchString(x.Sel.Name) {
			return "looks like raw spec/config JSON"
		}
	case *ast.ParenExpr:
		return p.suspect(x.X, s)
	case *ast.StarExpr:
		return p.suspect(x.X, s)
	case *ast.UnaryExpr:
		return p.suspect(x.X, s)
	case *ast.IndexExpr:
		return p.suspect(x.X, s)
	case *ast.SliceExpr:
		return p.suspect(x.X, s)
	case *ast.TypeAssertExpr:
		return p.suspect(x.X, s)
	case *ast.KeyValueExpr:
		return p.suspect(x.Value, s)
	case *ast.BinaryExpr:
		if why := p.suspect(x.X, s); why != "" {
			return why
		}
		return p.suspect(x.Y, s)
	case *ast.CompositeLit:
		for _, elt := range x.Elts {
			if why := p.suspect(elt, s); why != "" {
				return why
			}
		}
	case *ast.CallExpr:
		if isConversion(x) {
			return p.suspect(x.Args[0], s)
		}
	}
	return ""
}

// isConversion reports whether call converts its single argument to text or
// bytes (string(x), []byte(x), any(x)), which hides nothing.
func isConversion(call *ast.CallExpr) bool {
	if len(call.Args) != 1 {
		return false
	}
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		return fun.Name == "string" || fun.Name == "any"
	case *ast.ArrayType:
		return true
	case *ast.InterfaceType:
		return true
	}
	return false
}
