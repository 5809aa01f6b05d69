package router

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
)

// Every field of a ConverseInput reaches the ConverseStreamInput made from
// it: a field a newer SDK adds to both fails here until it is copied.
func TestStreamInputCopiesEveryField(t *testing.T) {
	var in bedrockruntime.ConverseInput
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		f, ft := v.Field(i), v.Type().Field(i)
		if !ft.IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(ft.Type.Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(ft.Type, 1, 1))
		case reflect.Map:
			m := reflect.MakeMap(ft.Type)
			m.SetMapIndex(reflect.New(ft.Type.Key()).Elem(), reflect.New(ft.Type.Elem()).Elem())
			f.Set(m)
		case reflect.Interface:
			f.Set(reflect.ValueOf(document.NewLazyDocument(map[string]any{"k": 1})))
		default:
			t.Fatalf("ConverseInput.%s is a %s; teach this test to fill it", ft.Name, f.Kind())
		}
	}
	out := reflect.ValueOf(streamInput(&in)).Elem()
	for i := range v.NumField() {
		ft := v.Type().Field(i)
		if !ft.IsExported() {
			continue
		}
		if g := out.FieldByName(ft.Name); !g.IsValid() || g.IsZero() {
			t.Errorf("ConverseInput.%s does not reach the ConverseStreamInput", ft.Name)
		}
	}
}
