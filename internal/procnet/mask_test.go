package procnet

import (
	"strings"
	"testing"
)

func TestMaskSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"mariadb\x00-uroot\x00-psecret\x00-e\x00select 1": "mariadb -uroot -p*** -e select 1",
		"mysql\x00--password=hunter2\x00db":               "mysql --password=*** db",
		"app\x00--password\x00hunter2\x00--port\x003306":  "app --password *** --port 3306",
		"env\x00DB_PASSWORD=s3cr3t\x00run":                "env DB_PASSWORD=*** run",
		"python3\x00worker.py\x00--dsn\x00user:pwd=x@h":   "python3 worker.py --dsn user:pwd=***",
		"mariadb\x00-p\x00-h\x00127.0.0.1":                "mariadb -p -h 127.0.0.1",
		"go-app\x00-port=3306":                            "go-app -p***",
	} {
		got := strings.ReplaceAll(string(maskSecrets([]byte(in))), "\x00", " ")
		if got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
		for _, secret := range []string{"secret", "hunter2", "s3cr3t"} {
			if strings.Contains(got, secret) {
				t.Errorf("%q leaks %q", got, secret)
			}
		}
	}
}
