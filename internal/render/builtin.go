package render

// BuiltinTemplate is the text of a built-in template or snippet
// ("default.ks", "snippets/network"): what a profile gets when the
// templates directory has no file of that name. `kickstand init` writes
// the default as a starting point to edit.
func BuiltinTemplate(name string) (string, error) {
	return readTemplate("", name)
}
