package main

// SOAP helpers: finding the method of a request, writing faults and simple
// responses in the simulator's own envelope format.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
	vxml "github.com/vmware/govmomi/vim25/xml"
)

// soapCall returns the method name and _this of a SOAP request body.
func soapCall(body []byte) (string, types.ManagedObjectReference) {
	var this types.ManagedObjectReference
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, methodDepth := 0, -1
	inBody := false
	name := ""
	for {
		tok, err := d.Token()
		if err != nil {
			return name, this
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case !inBody:
				inBody = t.Name.Local == "Body"
			case name == "":
				name, methodDepth = t.Name.Local, depth
			case depth == methodDepth+1 && t.Name.Local == "_this":
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						this.Type = a.Value
					}
				}
				var s string
				_ = d.DecodeElement(&s, &t)
				this.Value = strings.TrimSpace(s)
				return name, this
			}
		case xml.EndElement:
			depth--
			if name != "" && depth < methodDepth {
				return name, this
			}
		}
	}
}

func withBody(r *http.Request, body []byte) *http.Request {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

const envelopeHead = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
	`<soapenv:Body>`
const envelopeTail = `</soapenv:Body></soapenv:Envelope>`

func writeSOAP(w http.ResponseWriter, status int, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, envelopeHead+inner+envelopeTail)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// faultXML encodes a fault the way the simulator (and vSphere) do:
// <soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>MSG
// </faultstring><detail><KindFault xmlns="urn:vim25" xsi:type="Kind">
// ...fields...</KindFault></detail></soapenv:Fault>
func faultXML(msg string, fault types.BaseMethodFault) string {
	kind := reflect.TypeOf(fault).Elem().Name()
	var b bytes.Buffer
	e := vxml.NewEncoder(&b)
	start := vxml.StartElement{
		Name: vxml.Name{Local: kind + "Fault"},
		Attr: []vxml.Attr{
			{Name: vxml.Name{Local: "xmlns"}, Value: "urn:vim25"},
			{Name: vxml.Name{Local: "xsi:type"}, Value: kind},
		},
	}
	if err := e.EncodeElement(fault, start); err != nil {
		b.Reset()
		fmt.Fprintf(&b, `<%sFault xmlns="urn:vim25" xsi:type="%s"></%sFault>`, kind, kind, kind)
	}
	_ = e.Flush()
	return `<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>` + xmlEscape(msg) +
		`</faultstring><detail>` + b.String() + `</detail></soapenv:Fault>`
}

func writeFault(w http.ResponseWriter, msg string, fault types.BaseMethodFault) {
	writeSOAP(w, http.StatusInternalServerError, faultXML(msg, fault))
}

// newFault makes a fault of a vim25 type by name (e.g. "SystemError"),
// filling the fields vSphere always sets.
func newFault(kind, msg string, this types.ManagedObjectReference) (types.BaseMethodFault, error) {
	t, ok := types.TypeFunc()(kind)
	if !ok {
		return nil, fmt.Errorf("unknown vim25 type %q", kind)
	}
	f, ok := reflect.New(t).Interface().(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("%q is not a fault type", kind)
	}
	switch x := f.(type) {
	case *types.SystemError:
		x.Reason = msg
	case *types.NotAuthenticated:
		x.Object = this
		x.PrivilegeId = "System.View"
	case *types.NoPermission:
		x.Object = this
		x.PrivilegeId = "System.View"
	case *types.ManagedObjectNotFound:
		x.Obj = this
	case *types.InvalidArgument:
		x.InvalidProperty = msg
	}
	return f, nil
}
