package gateway

import (
	"encoding/base64"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonMarshaler is the gateway's JSON marshaler: protojson's output with the contract's options
// (proto field names, unpopulated fields emitted), written from an encoding plan made once per
// message type instead of protojson's per-call walk (which sorts each message's fields and
// wraps it to find the unpopulated ones). A message whose plan would need a mapping protojson
// gives special treatment (Any, Struct, Duration, wrappers, maps, ...) is left to protojson,
// and so is any message this encoder cannot write (invalid UTF-8, a timestamp out of range),
// so that protojson reports the error: every status body (google.rpc.Status, whose details are
// Any) is protojson's. The output is protojson's token for token; protojson alone also adds
// a space after some commas, at random per build, to keep its output from being relied on
// byte for byte.
type jsonMarshaler struct {
	runtime.JSONPb
	plans sync.Map // protoreflect.FullName -> *messagePlan, nil when protojson must write it
}

func newJSONMarshaler() *jsonMarshaler {
	return &jsonMarshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

// Marshal implements runtime.Marshaler.
func (j *jsonMarshaler) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok && m != nil {
		r := m.ProtoReflect()
		if p := j.plan(r.Descriptor()); p != nil && r.IsValid() {
			// Sized as the type's last output was, so that a response is written without
			// growing its buffer.
			if b, err := p.append(make([]byte, 0, p.lastSize.Load()+64), r); err == nil {
				p.lastSize.Store(int64(len(b)))
				return b, nil
			}
		}
	}
	return j.JSONPb.Marshal(v)
}

// messagePlan is how to write one message type: its fields in declaration order, the order
// protojson writes them in.
type messagePlan struct {
	fields []fieldPlan
	// lastSize is the length of the last output written from this plan.
	lastSize atomic.Int64
}

type fieldPlan struct {
	fd protoreflect.FieldDescriptor
	// name is `"name":`, the proto name quoted.
	name []byte
	// skipUnset: a field of a oneof (a proto3 optional field included) is written only when
	// set; every other field always, an unset message field as null.
	skipUnset bool
	list      bool
	// message is the plan of a message field's type (nil for a timestamp, written as one).
	message   *messagePlan
	timestamp bool
}

// plan returns the plan of message type md, making it the first time, or nil when protojson
// must write it.
func (j *jsonMarshaler) plan(md protoreflect.MessageDescriptor) *messagePlan {
	if p, ok := j.plans.Load(md.FullName()); ok {
		return p.(*messagePlan) //nolint:forcetypeassert // only *messagePlan is stored
	}
	p := makePlan(md, map[protoreflect.FullName]bool{})
	j.plans.Store(md.FullName(), p)
	return p
}

// timestampName is the one well-known type the plans write themselves.
const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// makePlan makes the plan of md, or returns nil; seen holds the types being planned, as a
// recursive type is left to protojson.
func makePlan(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) *messagePlan {
	// proto2 may have required fields, which protojson checks.
	if md.FullName().Parent() == "google.protobuf" || seen[md.FullName()] || md.ExtensionRanges().Len() > 0 ||
		md.Syntax() != protoreflect.Proto3 {
		return nil
	}
	seen[md.FullName()] = true
	defer delete(seen, md.FullName())
	p := &messagePlan{}
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if fd.IsMap() || fd.Kind() == protoreflect.GroupKind {
			return nil
		}
		f := fieldPlan{fd: fd, skipUnset: fd.ContainingOneof() != nil, list: fd.IsList()}
		f.name = append(strconv.AppendQuote(nil, fd.TextName()), ':')
		switch fd.Kind() {
		case protoreflect.MessageKind:
			if fd.Message().FullName() == timestampName {
				f.timestamp = true
			} else if f.message = makePlan(fd.Message(), seen); f.message == nil {
				return nil
			}
		case protoreflect.EnumKind:
			if fd.Enum().FullName() == "google.protobuf.NullValue" {
				return nil
			}
		case protoreflect.FloatKind, protoreflect.DoubleKind:
			return nil // protojson's float formatting is not worth copying for fields we do not have
		}
		p.fields = append(p.fields, f)
	}
	return p
}

var errUnencodable = errors.New("left to protojson")

func (p *messagePlan) append(b []byte, m protoreflect.Message) ([]byte, error) {
	b = append(b, '{')
	first := true
	for i := range p.fields {
		f := &p.fields[i]
		if f.skipUnset && !m.Has(f.fd) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.name...)
		var err error
		switch {
		case f.list:
			l := m.Get(f.fd).List()
			b = append(b, '[')
			for k := range l.Len() {
				if k > 0 {
					b = append(b, ',')
				}
				if b, err = f.appendSingular(b, l.Get(k)); err != nil {
					return nil, err
				}
			}
			b = append(b, ']')
		case f.fd.Kind() == protoreflect.MessageKind && !m.Has(f.fd):
			b = append(b, "null"...)
		default:
			if b, err = f.appendSingular(b, m.Get(f.fd)); err != nil {
				return nil, err
			}
		}
	}
	return append(b, '}'), nil
}

// appendSingular writes one value as protojson does.
func (f *fieldPlan) appendSingular(b []byte, v protoreflect.Value) ([]byte, error) {
	switch f.fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.StringKind:
		return appendJSONString(b, v.String())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		// 64-bit integers are JSON strings.
		b = append(b, '"')
		return append(strconv.AppendInt(b, v.Int(), 10), '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendUint(b, v.Uint(), 10), '"'), nil
	case protoreflect.BytesKind:
		b = append(b, '"')
		return append(base64.StdEncoding.AppendEncode(b, v.Bytes()), '"'), nil
	case protoreflect.EnumKind:
		if ev := f.fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendJSONString(b, string(ev.Name()))
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10), nil
	case protoreflect.MessageKind:
		if f.timestamp {
			return appendTimestamp(b, v.Message())
		}
		return f.message.append(b, v.Message())
	default:
		return nil, errUnencodable
	}
}

// Timestamp bounds of protojson: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// appendTimestamp writes a google.protobuf.Timestamp as protojson does: RFC 3339 in UTC with 0,
// 3, 6 or 9 fraction digits.
func appendTimestamp(b []byte, m protoreflect.Message) ([]byte, error) {
	ts, ok := m.Interface().(*timestamppb.Timestamp)
	if !ok {
		return nil, errUnencodable
	}
	secs, nanos := ts.GetSeconds(), int(ts.GetNanos())
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos >= int(time.Second) {
		return nil, errUnencodable
	}
	// time.Time.AppendFormat parses its layout on every call; the digits are written here.
	t := time.Unix(secs, 0).UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), sec, 2)
	switch {
	case nanos == 0:
	case nanos%1e6 == 0:
		b = appendDigits(append(b, '.'), nanos/1e6, 3)
	case nanos%1e3 == 0:
		b = appendDigits(append(b, '.'), nanos/1e3, 6)
	default:
		b = appendDigits(append(b, '.'), nanos, 9)
	}
	return append(b, 'Z', '"'), nil
}

// appendDigits writes n, which is not negative, in width decimal digits, zero-padded.
func appendDigits(b []byte, n, width int) []byte {
	start := len(b)
	for range width {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= start; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// appendJSONString quotes s as protojson does: only '"', '\\' and control characters are
// escaped; invalid UTF-8 is an error.
func appendJSONString(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] >= ' ' && s[i] != '"' && s[i] != '\\' && s[i] < utf8.RuneSelf {
			i++
		}
		b, s = append(b, s[:i]...), s[i:]
		if len(s) == 0 {
			break
		}
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			return nil, errUnencodable
		case r >= utf8.RuneSelf:
			b = append(b, s[:n]...)
		default:
			b = append(b, '\\')
			switch r {
			case '"', '\\':
				b = append(b, byte(r))
			case '\b':
				b = append(b, 'b')
			case '\f':
				b = append(b, 'f')
			case '\n':
				b = append(b, 'n')
			case '\r':
				b = append(b, 'r')
			case '\t':
				b = append(b, 't')
			default: // another control character, one byte
				const hex = "0123456789abcdef"
				b = append(b, 'u', '0', '0', hex[s[0]>>4], hex[s[0]&0xf])
			}
		}
		s = s[n:]
	}
	return append(b, '"'), nil
}
