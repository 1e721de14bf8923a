package declare

import "github.com/goccy/go-yaml/ast"

// positions maps the boxes of a file, and their fields, to the lines where
// they are written, for errors found after decoding.
type positions struct {
	file   string
	boxes  map[string]pos
	fields map[string]map[string]pos
}

// indexPositions walks the document's boxes mapping.
func indexPositions(file string, body ast.Node) positions {
	p := positions{file: file, boxes: map[string]pos{}, fields: map[string]map[string]pos{}}
	boxes := mappingValue(body, "boxes")
	forEachPair(boxes, func(id string, at pos, value ast.Node) {
		at.file = file
		p.boxes[id] = at
		fields := map[string]pos{}
		forEachPair(value, func(name string, fat pos, _ ast.Node) {
			fat.file = file
			fields[name] = fat
		})
		p.fields[id] = fields
	})
	return p
}

// box returns where box id is declared.
func (p positions) box(id string) pos {
	if at, ok := p.boxes[id]; ok {
		return at
	}
	return pos{file: p.file}
}

// field returns where field name of box id is written, else where the box
// is declared.
func (p positions) field(id, name string) pos {
	if at, ok := p.fields[id][name]; ok {
		return at
	}
	return p.box(id)
}

// mappingValue returns the value of key in mapping node n, or nil.
func mappingValue(n ast.Node, key string) ast.Node {
	var out ast.Node
	forEachPair(n, func(k string, _ pos, v ast.Node) {
		if k == key {
			out = v
		}
	})
	return out
}

// forEachPair calls fn for each key of mapping node n (nothing if n is not
// a mapping).
func forEachPair(n ast.Node, fn func(key string, at pos, value ast.Node)) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		return
	}
	for _, mv := range pairs {
		tk := mv.Key.GetToken()
		fn(tk.Value, pos{line: tk.Position.Line, col: tk.Position.Column}, mv.Value)
	}
}
