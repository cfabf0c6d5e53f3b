package e2ekit

import (
	"crypto/sha1"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// NativeScramble is mysql_native_password's reply:
// SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
func NativeScramble(scramble []byte, pass string) []byte {
	if pass == "" {
		return nil
	}
	s1 := sha1.Sum([]byte(pass))
	s2 := sha1.Sum(s1[:])
	h := sha1.New()
	h.Write(scramble[:20])
	h.Write(s2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= s1[i]
	}
	return out
}

// Ed25519Reply is client_ed25519's reply: an Ed25519 signature of the
// server's nonce with a key derived from SHA512(password), as MariaDB's
// plugin/auth_ed25519/ref10/sign.c does it.
func Ed25519Reply(nonce []byte, pass string) []byte {
	h := sha512.Sum512([]byte(pass))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err)
	}
	a := (&edwards25519.Point{}).ScalarBaseMult(s)
	mh := sha512.New()
	mh.Write(h[32:])
	mh.Write(nonce)
	r, _ := edwards25519.NewScalar().SetUniformBytes(mh.Sum(nil))
	rp := (&edwards25519.Point{}).ScalarBaseMult(r)
	kh := sha512.New()
	kh.Write(rp.Bytes())
	kh.Write(a.Bytes())
	kh.Write(nonce)
	k, _ := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	sig := k.MultiplyAdd(k, s, r)
	return append(rp.Bytes(), sig.Bytes()...)
}
