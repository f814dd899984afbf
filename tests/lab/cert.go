package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// loadOrCreateCert returns the lab's TLS certificate: DIR/lab-cert.pem and
// DIR/lab-key.pem, made on first use (self-signed RSA 2048 for 127.0.0.1,
// ::1 and localhost) and reused afterwards, so that a lab restarted on the
// same DIR keeps its thumbprint.
func loadOrCreateCert(dir string) (tls.Certificate, string, error) {
	return loadOrCreateCertNamed(dir, "lab", "vmdkfs-lab simulated vCenter")
}

// loadOrCreateCertNamed is loadOrCreateCert for DIR/NAME-cert.pem and
// DIR/NAME-key.pem, with OU as the subject's organizational unit (the NFC
// server has a certificate of its own, as an ESXi host's port 902 has
// another certificate than vCenter's 443).
func loadOrCreateCertNamed(dir, name, ou string) (tls.Certificate, string, error) {
	certFile := filepath.Join(dir, name+"-cert.pem")
	keyFile := filepath.Join(dir, name+"-key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		return c, certFile, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         "127.0.0.1",
			Organization:       []string{"vmdkfs lab"},
			OrganizationalUnit: []string{ou},
		},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own trust anchor (curl --cacert)
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err = os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err = os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	return c, certFile, err
}

// thumbprints gives the SHA-1 and SHA-256 fingerprints of a DER
// certificate the way vSphere shows them: upper-case hex, colon-separated.
func thumbprints(der []byte) (string, string) {
	s1 := sha1.Sum(der)
	s256 := sha256.Sum256(der)
	return colonHex(s1[:]), colonHex(s256[:])
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}
