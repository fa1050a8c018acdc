package ide

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// A small XML tree for JetBrains run configuration files. encoding/xml cannot
// round-trip a document (it drops self-closing tags and reorders namespaces),
// so the file is read into this tree and written back the way JetBrains IDEs
// write it: two-space indentation, one element per line, "<x />" for empty
// elements, attributes in their original order. A file the IDE wrote comes
// back byte for byte; comments and processing instructions are kept.

type xkind int

const (
	xElement xkind = iota
	xText
	xComment
	xProcInst
	xDirective
)

type xattr struct{ name, value string }

type xnode struct {
	kind     xkind
	name     string // elements: "local" or "prefix:local"
	attrs    []xattr
	children []*xnode
	text     string // text, comment body, "target inst" of a processing instruction, directive
}

func (n *xnode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.name == name {
			return a.value, true
		}
	}
	return "", false
}

// setAttr sets an attribute, appending it when new, and reports a change.
func (n *xnode) setAttr(name, value string) bool {
	for i, a := range n.attrs {
		if a.name == name {
			if a.value == value {
				return false
			}
			n.attrs[i].value = value
			return true
		}
	}
	n.attrs = append(n.attrs, xattr{name, value})
	return true
}

// child returns the first child element called name.
func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if c.kind == xElement && c.name == name {
			return c
		}
	}
	return nil
}

func elem(name string, attrs ...string) *xnode {
	n := &xnode{kind: xElement, name: name}
	for i := 0; i+1 < len(attrs); i += 2 {
		n.attrs = append(n.attrs, xattr{attrs[i], attrs[i+1]})
	}
	return n
}

func rawName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// parseXML reads a document into its top-level nodes, exactly one of them an
// element.
func parseXML(src []byte) ([]*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(src))
	d.Strict = true
	var top []*xnode
	var stack []*xnode
	add := func(n *xnode) {
		if len(stack) == 0 {
			top = append(top, n)
		} else {
			p := stack[len(stack)-1]
			p.children = append(p.children, n)
		}
	}
	roots := 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				if roots++; roots > 1 {
					return nil, fmt.Errorf("more than one root element")
				}
			}
			n := &xnode{kind: xElement, name: rawName(t.Name)}
			for _, a := range t.Attr {
				n.attrs = append(n.attrs, xattr{rawName(a.Name), a.Value})
			}
			add(n)
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != rawName(t.Name) {
				return nil, fmt.Errorf("line %d: unexpected </%s>", lineOf(d, src), rawName(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
			if len(stack) == 0 {
				return nil, fmt.Errorf("line %d: text outside the root element", lineOf(d, src))
			}
			add(&xnode{kind: xText, text: string(t)})
		case xml.Comment:
			if bytes.Contains(t, []byte("--")) || bytes.HasSuffix(t, []byte("-")) {
				return nil, fmt.Errorf("line %d: comment contains \"--\"", lineOf(d, src))
			}
			add(&xnode{kind: xComment, text: string(t)})
		case xml.ProcInst:
			if len(stack) > 0 || len(top) > 0 || t.Target != "xml" {
				// Only the XML declaration is expected; keep it simple and strict.
				return nil, fmt.Errorf("line %d: unexpected processing instruction <?%s?>", lineOf(d, src), t.Target)
			}
			add(&xnode{kind: xProcInst, text: strings.TrimSpace(t.Target + " " + string(t.Inst))})
		case xml.Directive:
			return nil, fmt.Errorf("line %d: unexpected <!%s>", lineOf(d, src), firstWord(string(t)))
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unexpected end of file inside <%s>", stack[len(stack)-1].name)
	}
	if roots == 0 {
		return nil, fmt.Errorf("no root element")
	}
	return top, nil
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func lineOf(d *xml.Decoder, src []byte) int {
	off := int(d.InputOffset())
	if off > len(src) {
		off = len(src)
	}
	return bytes.Count(src[:off], []byte("\n")) + 1
}

// root returns the document's root element.
func rootElement(doc []*xnode) *xnode {
	for _, n := range doc {
		if n.kind == xElement {
			return n
		}
	}
	return nil
}

// validXMLString reports whether s can be written in an XML 1.0 document.
func validXMLString(s string) bool {
	for _, r := range s {
		if !(r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
	}
	return utf8.ValidString(s)
}

var (
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "\n", "&#10;", "\r", "&#13;", "\t", "&#9;")
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#13;")
)

// renderXML writes doc in the JetBrains layout.
func renderXML(doc []*xnode) []byte {
	var b bytes.Buffer
	for _, n := range doc {
		renderNode(&b, n, "")
	}
	return b.Bytes()
}

func renderNode(b *bytes.Buffer, n *xnode, indent string) {
	switch n.kind {
	case xProcInst:
		b.WriteString(indent + "<?" + n.text + "?>\n")
	case xComment:
		b.WriteString(indent + "<!--" + n.text + "-->\n")
	case xText:
		b.WriteString(indent + textEscaper.Replace(n.text) + "\n")
	case xElement:
		b.WriteString(indent + "<" + n.name)
		for _, a := range n.attrs {
			b.WriteString(" " + a.name + `="` + attrEscaper.Replace(a.value) + `"`)
		}
		switch {
		case len(n.children) == 0:
			b.WriteString(" />\n")
		case len(n.children) == 1 && n.children[0].kind == xText:
			b.WriteString(">" + textEscaper.Replace(n.children[0].text) + "</" + n.name + ">\n")
		default:
			b.WriteString(">\n")
			for _, c := range n.children {
				if c.kind == xText {
					// Text between elements gets its own line; the spaces
					// around it are layout, not content.
					c = &xnode{kind: xText, text: strings.TrimSpace(c.text)}
				}
				renderNode(b, c, indent+"  ")
			}
			b.WriteString(indent + "</" + n.name + ">\n")
		}
	}
}
