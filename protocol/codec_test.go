package protocol

import (
	"bytes"
	"testing"
)

func TestReadLenEncInt(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		pos  int
		want uint64
		next int
		ok   bool
	}{
		{"one byte", []byte{0xfa}, 0, 0xfa, 1, true},
		{"zero", []byte{0x00}, 0, 0, 1, true},
		{"at pos", []byte{0xff, 0x05}, 1, 5, 2, true},
		{"2 bytes", []byte{0xfc, 0x34, 0x12}, 0, 0x1234, 3, true},
		{"3 bytes", []byte{0xfd, 0x56, 0x34, 0x12}, 0, 0x123456, 4, true},
		{"8 bytes", []byte{0xfe, 1, 2, 3, 4, 5, 6, 7, 8}, 0, 0x0807060504030201, 9, true},
		{"NULL is not an int", []byte{0xfb}, 0, 0, 0, false},
		{"0xFF is not an int", []byte{0xff}, 0, 0, 0, false},
		{"empty", nil, 0, 0, 0, false},
		{"short 2", []byte{0xfc, 0x01}, 0, 0, 0, false},
		{"short 3", []byte{0xfd, 0x01, 0x02}, 0, 0, 0, false},
		{"short 8", []byte{0xfe, 1, 2, 3, 4, 5, 6, 7}, 0, 0, 0, false},
		{"pos at end", []byte{0x01}, 1, 0, 1, false},
		{"pos past end", []byte{0x01}, 5, 0, 5, false},
		{"negative pos", []byte{0x01}, -1, 0, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, next, ok := ReadLenEncInt(tt.data, tt.pos)
			if ok != tt.ok || (ok && (v != tt.want || next != tt.next)) {
				t.Errorf("ReadLenEncInt = (%#x, %d, %v), want (%#x, %d, %v)", v, next, ok, tt.want, tt.next, tt.ok)
			}
			if !ok && next != tt.pos {
				t.Errorf("next = %d on failure, want pos %d", next, tt.pos)
			}
		})
	}
}

func TestPutLenEncIntRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xfa, 0xfb, 0xfc, 0xff, 0x100, 0xffff, 0x10000,
		0xffffff, 0x1000000, 0xffffffff, 1 << 40, ^uint64(0)} {
		b := PutLenEncInt([]byte{0xaa}, v)
		got, next, ok := ReadLenEncInt(b, 1)
		if !ok || got != v || next != len(b) {
			t.Errorf("round trip %#x: got (%#x, %d, %v), encoded % x", v, got, next, ok, b)
		}
	}
	if n := len(PutLenEncInt(nil, 0xfa)); n != 1 {
		t.Errorf("0xfa encodes in %d bytes, want 1", n)
	}
	if n := len(PutLenEncInt(nil, 0xfb)); n != 3 {
		t.Errorf("0xfb encodes in %d bytes, want 3", n)
	}
}

func TestReadLenEncString(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		pos  int
		want string
		next int
		ok   bool
	}{
		{"empty string", []byte{0x00}, 0, "", 1, true},
		{"abc", []byte{0x03, 'a', 'b', 'c', 'd'}, 0, "abc", 4, true},
		{"at pos", []byte{'x', 0x01, 'z'}, 1, "z", 3, true},
		{"2-byte length", append([]byte{0xfc, 0x00, 0x01}, bytes.Repeat([]byte{'q'}, 256)...), 0, string(bytes.Repeat([]byte{'q'}, 256)), 259, true},
		{"short", []byte{0x04, 'a', 'b'}, 0, "", 0, false},
		{"NULL", []byte{0xfb}, 0, "", 0, false},
		{"huge length", []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a'}, 0, "", 0, false},
		{"length near MaxInt64", []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 0, "", 0, false},
		{"empty input", nil, 0, "", 0, false},
		{"negative pos", []byte{0x00}, -3, "", -3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, next, ok := ReadLenEncString(tt.data, tt.pos)
			if ok != tt.ok || (ok && (string(s) != tt.want || next != tt.next)) {
				t.Errorf("ReadLenEncString = (%q, %d, %v), want (%q, %d, %v)", s, next, ok, tt.want, tt.next, tt.ok)
			}
		})
	}
}

func TestReadNulString(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		pos  int
		want string
		next int
		ok   bool
	}{
		{"simple", []byte("abc\x00def"), 0, "abc", 4, true},
		{"empty", []byte{0}, 0, "", 1, true},
		{"at pos", []byte("abc\x00def\x00"), 4, "def", 8, true},
		{"no NUL", []byte("abc"), 0, "", 0, false},
		{"pos at end", []byte("abc\x00"), 4, "", 4, false},
		{"pos past end", []byte("abc"), 9, "", 9, false},
		{"negative pos", []byte("a\x00"), -1, "", -1, false},
		{"nil", nil, 0, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, next, ok := ReadNulString(tt.data, tt.pos)
			if ok != tt.ok || (ok && (string(s) != tt.want || next != tt.next)) {
				t.Errorf("ReadNulString = (%q, %d, %v), want (%q, %d, %v)", s, next, ok, tt.want, tt.next, tt.ok)
			}
		})
	}
}

func TestFixedInts(t *testing.T) {
	d := []byte{1, 2, 3, 4}
	if v, n, ok := readUint16(d, 2); !ok || v != 0x0403 || n != 4 {
		t.Errorf("readUint16 = %#x %d %v", v, n, ok)
	}
	if v, n, ok := readUint24(d, 1); !ok || v != 0x040302 || n != 4 {
		t.Errorf("readUint24 = %#x %d %v", v, n, ok)
	}
	if v, n, ok := readUint32(d, 0); !ok || v != 0x04030201 || n != 4 {
		t.Errorf("readUint32 = %#x %d %v", v, n, ok)
	}
	for _, pos := range []int{-1, 3, 4, 100} {
		if _, _, ok := readUint16(d, pos); ok {
			t.Errorf("readUint16 at %d: ok", pos)
		}
		if _, _, ok := readUint24(d, pos); ok {
			t.Errorf("readUint24 at %d: ok", pos)
		}
		if _, _, ok := readUint32(d, pos); ok {
			t.Errorf("readUint32 at %d: ok", pos)
		}
	}
	if _, _, ok := readUint8(d, -1); ok {
		t.Error("readUint8 at -1: ok")
	}
}

func TestAppendPacket(t *testing.T) {
	got := AppendPacket([]byte{0xee}, 7, []byte("hi"))
	want := []byte{0xee, 2, 0, 0, 7, 'h', 'i'}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendPacket = % x, want % x", got, want)
	}
	if got := AppendPacket(nil, 255, nil); !bytes.Equal(got, []byte{0, 0, 0, 255}) {
		t.Errorf("empty packet = % x", got)
	}
}

func TestFrameLogicalSplits(t *testing.T) {
	for _, n := range []int{0, 10, MaxPacketLen - 1, MaxPacketLen, MaxPacketLen + 1, 2 * MaxPacketLen} {
		b, next := frameLogical(nil, 254, make([]byte, n))
		var lens []int
		var seqs []byte
		for p := 0; p < len(b); {
			l := int(b[p]) | int(b[p+1])<<8 | int(b[p+2])<<16
			lens, seqs = append(lens, l), append(seqs, b[p+3])
			p += 4 + l
		}
		wantPk := n/MaxPacketLen + 1
		if len(lens) != wantPk || lens[len(lens)-1] != n%MaxPacketLen {
			t.Errorf("n=%d: physical lengths %v", n, lens)
		}
		for i, s := range seqs {
			if s != byte(254+i) {
				t.Errorf("n=%d: seqs %v, want wrap from 254", n, seqs)
				break
			}
		}
		if next != byte(254+wantPk) {
			t.Errorf("n=%d: next seq %d", n, next)
		}
	}
}
