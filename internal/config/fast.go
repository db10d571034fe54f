package config

import (
	"encoding"
	"reflect"

	"ganeti-userdown/internal/plaintoml"
)

// parseSimple decodes a document of the plain subset of TOML (see package
// plaintoml) into the defaults, through the toml tags, without the cost
// of a full TOML decoder: the toolstack shim reads the file on every xl
// call. ok is false for anything outside that subset, and for an unknown
// section or key or a value of the wrong type: the full decoder then
// reads the file and reports what is wrong. For every document it
// accepts, the result equals the full decoder's (FuzzParseSimple).
func parseSimple(b []byte) (c Config, ok bool) {
	c = Default()
	root := reflect.ValueOf(&c).Elem()
	ok = plaintoml.Scan(b, func(section, key string, v plaintoml.Value) bool {
		s := fieldByTag(root, section)
		if !s.IsValid() || s.Kind() != reflect.Struct {
			return false
		}
		if key == "" {
			return true // the section's header
		}
		f := fieldByTag(s, key)
		switch {
		case !f.IsValid():
			return false
		case v.IsInt:
			if f.Kind() != reflect.Int {
				return false
			}
			f.SetInt(v.Int)
			return true
		}
		return setString(f, v.String)
	})
	return c, ok
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func setString(f reflect.Value, s string) bool {
	if f.Addr().Type().Implements(textUnmarshaler) {
		return f.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)) == nil
	}
	if f.Kind() != reflect.String {
		return false
	}
	f.SetString(s)
	return true
}

// fieldByTag returns the field of struct v whose toml tag is name.
func fieldByTag(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}
