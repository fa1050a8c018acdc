package ide

import (
	"bytes"

	"github.com/tailscale/hujson"
)

// This file edits a hujson syntax tree the way a person would edit the text:
// new members and elements go at the end of their object or array, indented
// like their siblings, with the file's trailing-comma style kept; comments stay
// where they were. hujson keeps every byte it parsed (Value.Pack of an
// unchanged tree is the input), so an edit that changes nothing changes no byte.

// items abstracts the members of an object and the elements of an array.
type items struct {
	n int
	// before is the whitespace and comments before item i (for an object
	// member: before its name); after is what lies between item i and the
	// comma that follows it, non-nil exactly when a comma follows the last item.
	before, after func(i int) *hujson.Extra
	// closing is what lies between the last comma (or the opening bracket)
	// and the closing bracket.
	closing *hujson.Extra
	remove  func(i int)
}

func objectItems(o *hujson.Object) items {
	return items{
		n:       len(o.Members),
		before:  func(i int) *hujson.Extra { return &o.Members[i].Name.BeforeExtra },
		after:   func(i int) *hujson.Extra { return &o.Members[i].Value.AfterExtra },
		closing: &o.AfterExtra,
		remove:  func(i int) { o.Members = append(o.Members[:i:i], o.Members[i+1:]...) },
	}
}

func arrayItems(a *hujson.Array) items {
	return items{
		n:       len(a.Elements),
		before:  func(i int) *hujson.Extra { return &a.Elements[i].BeforeExtra },
		after:   func(i int) *hujson.Extra { return &a.Elements[i].AfterExtra },
		closing: &a.AfterExtra,
		remove:  func(i int) { a.Elements = append(a.Elements[:i:i], a.Elements[i+1:]...) },
	}
}

func hasComment(e hujson.Extra) bool { return len(bytes.TrimSpace(e)) > 0 }

func trimTrailingSpace(e hujson.Extra) hujson.Extra {
	return hujson.Extra(bytes.TrimRight(e, " \t\r\n"))
}

// leadingSpace returns the run of spaces and tabs at the start of b.
func leadingSpace(b []byte) string {
	n := 0
	for n < len(b) && (b[n] == ' ' || b[n] == '\t') {
		n++
	}
	return string(b[:n])
}

func concat(parts ...[]byte) hujson.Extra {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// placeAppended lays out item n, just appended after the n existing items of a
// container whose line is indented by indent.
func placeAppended(s items, n int, indent, unit string) {
	newBefore, newAfter := s.before(n), s.after(n)
	if n == 0 {
		// An empty container becomes multi-line; comments inside it stay first.
		lead := trimTrailingSpace(*s.closing)
		*newBefore = concat(lead, []byte("\n"+indent+unit))
		*s.closing = hujson.Extra("\n" + indent)
		*newAfter = nil
		return
	}
	trailingComma := *s.after(n - 1) != nil
	prevBefore := *s.before(n - 1)
	if nl := bytes.LastIndexByte(prevBefore, '\n'); nl < 0 {
		// A container written on one line stays on one line.
		*newBefore = hujson.Extra(" ")
	} else {
		itemIndent := leadingSpace(prevBefore[nl+1:])
		// What follows the previous last item on its own line (a comment about
		// it) stays on that line; the rest stays before the closing bracket.
		head, tail := *s.closing, hujson.Extra(nil)
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			head, tail = head[:i], head[i:]
		}
		if !hasComment(head) {
			head = nil
		}
		if tail == nil {
			tail = hujson.Extra("\n" + indent)
		}
		*newBefore = concat(head, []byte("\n"+itemIndent))
		*s.closing = concat(tail)
	}
	if trailingComma {
		*newAfter = hujson.Extra{}
	} else {
		*newAfter = nil
	}
}

// removeItem removes item i, keeping comments written before it and the
// container's trailing-comma style.
func removeItem(s items, i int) {
	var carried hujson.Extra
	if b := *s.before(i); hasComment(b) {
		carried = trimTrailingSpace(b)
	}
	if a := *s.after(i); hasComment(a) {
		carried = concat(carried, a)
	}
	last := i == s.n-1
	trailingComma := *s.after(s.n - 1) != nil
	switch {
	case !last:
		if carried != nil {
			next := s.before(i + 1)
			*next = concat(carried, *next)
		}
	case s.n == 1:
		c := concat(carried, *s.closing)
		if !hasComment(c) {
			c = nil
		}
		*s.closing = c
	default:
		prevAfter := s.after(i - 1)
		if trailingComma {
			if *prevAfter == nil {
				*prevAfter = hujson.Extra{}
			}
			*s.closing = concat(carried, *s.closing)
		} else {
			// The previous item becomes the last one, with no comma after it.
			*s.closing = concat(*prevAfter, carried, *s.closing)
			*prevAfter = nil
		}
	}
	s.remove(i)
}

// member returns the value of obj's member name, nil if absent.
func member(obj *hujson.Object, name string) *hujson.Value {
	for i := range obj.Members {
		if lit, ok := obj.Members[i].Name.Value.(hujson.Literal); ok && lit.String() == name {
			return &obj.Members[i].Value
		}
	}
	return nil
}

// appendMember adds name: val at the end of obj, whose line is indented by
// indent.
func appendMember(obj *hujson.Object, indent, unit, name string, val hujson.Value) {
	val.BeforeExtra = hujson.Extra(" ")
	val.AfterExtra = nil
	obj.Members = append(obj.Members, hujson.ObjectMember{Name: hujson.Value{Value: hujson.String(name)}, Value: val})
	placeAppended(objectItems(obj), len(obj.Members)-1, indent, unit)
}

// appendElement adds val at the end of arr, whose line is indented by indent.
func appendElement(arr *hujson.Array, indent, unit string, val hujson.Value) {
	val.BeforeExtra, val.AfterExtra = nil, nil
	arr.Elements = append(arr.Elements, val)
	placeAppended(arrayItems(arr), len(arr.Elements)-1, indent, unit)
}

// lineIndent is the indentation of the line holding offset off of src.
func lineIndent(src []byte, off int) string {
	if off > len(src) {
		off = len(src)
	}
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return leadingSpace(src[start:])
}

// detectIndentUnit guesses one level of indentation from the file: a tab if the
// first indented line uses one, else the smallest indentation in spaces; four
// spaces (what VS Code writes) when nothing is indented.
func detectIndentUnit(src []byte) string {
	smallest := 0
	for _, line := range bytes.Split(src, []byte("\n")) {
		ws := leadingSpace(line)
		if ws == "" || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if ws[0] == '\t' {
			if smallest == 0 {
				return "\t"
			}
			continue
		}
		n := len(ws) - len(bytes.TrimLeft([]byte(ws), " ")) // leading spaces
		if n > 0 && (smallest == 0 || n < smallest) {
			smallest = n
		}
	}
	if smallest == 0 || smallest > 8 {
		return "    "
	}
	return string(bytes.Repeat([]byte(" "), smallest))
}
