package graph

import "slices"

// MetadataProp is one entry of a model's metadata_props: a free-form key and its value. dnx
// itself writes keys such as "dnx.densenet.classes" (builders.MetaPrefix) and the class names
// (labels.MetadataKey).
type MetadataProp struct {
	Key, Value string
}

// The metadata of a Graph is an ordered list with distinct keys. ONNX declares metadata_props a
// repeated field, but onnx.checker rejects a model that repeats a key and readers such as ONNX
// Runtime keep a map, so a repeated key has no meaning of its own to preserve: Import keeps the
// first entry's place and the last entry's value (what a map built in file order holds, as every
// dnx reader sees it), and every method below keeps the keys distinct. The order is kept because
// it is what a user sees in `dnx inspect` and Netron, and so that an unchanged model exports to
// the same bytes.

// Metadata returns a copy of the model's metadata_props in order. Changing the copy does not
// change g; use SetMetadata and DeleteMetadata.
func (g *Graph) Metadata() []MetadataProp { return slices.Clone(g.metadata) }

// MetadataMap returns the metadata as a map from key to value, for lookups by callers that do not
// care about the order (class names, normalisation).
func (g *Graph) MetadataMap() map[string]string {
	m := make(map[string]string, len(g.metadata))
	for _, p := range g.metadata {
		m[p.Key] = p.Value
	}
	return m
}

// MetadataValue returns the value recorded under key and whether there is one.
func (g *Graph) MetadataValue(key string) (string, bool) {
	if i := g.metadataIndex(key); i >= 0 {
		return g.metadata[i].Value, true
	}
	return "", false
}

// SetMetadata records value under key: in place when key is already there, so the order of the
// other entries does not move, and at the end otherwise.
func (g *Graph) SetMetadata(key, value string) {
	if i := g.metadataIndex(key); i >= 0 {
		g.metadata[i].Value = value
		return
	}
	g.metadata = append(g.metadata, MetadataProp{Key: key, Value: value})
}

// DeleteMetadata removes key and reports whether it was there.
func (g *Graph) DeleteMetadata(key string) bool {
	i := g.metadataIndex(key)
	if i < 0 {
		return false
	}
	g.metadata = slices.Delete(g.metadata, i, i+1)
	return true
}

// metadataIndex returns key's position in g.metadata, or -1. A linear scan: models carry a
// handful of entries, and a map beside the slice would be one more thing for Clone to keep in
// step.
func (g *Graph) metadataIndex(key string) int {
	return slices.IndexFunc(g.metadata, func(p MetadataProp) bool { return p.Key == key })
}
