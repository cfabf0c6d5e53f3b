package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
)

func scratchConn(t *testing.T, addr string) (*client.Conn, *net.TCPConn) {
	var raw *net.TCPConn
	d := func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
		if err == nil {
			raw = c.(*net.TCPConn)
		}
		return c, err
	}
	c, err := client.ConnectWithDialer(context.Background(), "tcp", addr, "root", "", "mysql", d)
	if err != nil {
		t.Fatal(err)
	}
	return c, raw
}

func TestZZScratch(t *testing.T) {
	ctx := context.Background()
	show := func(name string, f func()) {
		off := db.LogOffset()
		before, _ := db.AbortedCounters(ctx)
		f()
		time.Sleep(3500 * time.Millisecond)
		after, _ := db.AbortedCounters(ctx)
		log, _ := db.ErrorLogSince(off)
		fmt.Printf("=== %s\nbefore %v\nafter  %v\n%s\n", name, before, after, log)
	}
	show("sleep FIN", func() {
		c, raw := scratchConn(t, db.Addr())
		fmt.Println("id", c.GetConnectionID())
		raw.Write([]byte{byte(len("SELECT SLEEP(2)") + 1), 0, 0, 0, 3})
		raw.Write([]byte("SELECT SLEEP(2)"))
		time.Sleep(200 * time.Millisecond)
		raw.Close()
	})
	show("sleep RST", func() {
		c, raw := scratchConn(t, db.Addr())
		fmt.Println("id", c.GetConnectionID())
		raw.Write([]byte{byte(len("SELECT SLEEP(2)") + 1), 0, 0, 0, 3})
		raw.Write([]byte("SELECT SLEEP(2)"))
		time.Sleep(200 * time.Millisecond)
		raw.SetLinger(0)
		raw.Close()
	})
	show("kill idle", func() {
		c, raw := scratchConn(t, db.Addr())
		id := c.GetConnectionID()
		fmt.Println("id", id)
		db.Exec(ctx, fmt.Sprintf("KILL %d", id))
		raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(raw)
		fmt.Printf("read %q err %v\n", b, err)
		raw.Close()
	})
	show("kill sleep", func() {
		c, raw := scratchConn(t, db.Addr())
		id := c.GetConnectionID()
		fmt.Println("id", id)
		go func() { time.Sleep(300 * time.Millisecond); db.Exec(ctx, fmt.Sprintf("KILL %d", id)) }()
		raw.Write([]byte{byte(len("SELECT SLEEP(2)") + 1), 0, 0, 0, 3})
		raw.Write([]byte("SELECT SLEEP(2)"))
		raw.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(raw)
		fmt.Printf("read %q err %v\n", b, err)
		raw.Close()
	})
	show("handshake abandon", func() {
		c, _ := net.Dial("tcp", db.Addr())
		b := make([]byte, 200)
		n, _ := c.Read(b)
		fmt.Printf("greeting %d\n", n)
		c.Close()
	})
	show("wrong password", func() {
		_, err := client.Connect(db.Addr(), "root", "nope", "")
		fmt.Println("err", err)
	})
	show("mid-result FIN", func() {
		c, raw := scratchConn(t, db.Addr())
		fmt.Println("id", c.GetConnectionID())
		n := 0
		var r gmysql.Result
		err := c.ExecuteSelectStreaming("SELECT seq, REPEAT('x',1000) FROM mysql.seq_1_to_1000000", &r, func(row []gmysql.FieldValue) error {
			n++
			if n == 100 {
				return io.EOF
			}
			return nil
		}, nil)
		fmt.Println("stream err", err)
		raw.Close()
	})
	_ = gmysql.Result{}
}

func TestZZShutdown(t *testing.T) {
	ctx := context.Background()
	c, raw := scratchConn(t, db.Addr())
	fmt.Println("id", c.GetConnectionID())
	c2, raw2 := scratchConn(t, db.Addr())
	fmt.Println("id2", c2.GetConnectionID())
	raw2.Write([]byte{byte(len("SELECT SLEEP(5)") + 1), 0, 0, 0, 3})
	raw2.Write([]byte("SELECT SLEEP(5)"))
	go func() {
		raw2.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(raw2)
		fmt.Printf("sleeping read %q err %v\n", b, err)
	}()
	time.Sleep(200 * time.Millisecond)
	off := db.LogOffset()
	t0 := time.Now()
	fmt.Println(db.Shutdown(ctx), time.Since(t0))
	raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(raw)
	fmt.Printf("read %q err %v\n", b, err)
	time.Sleep(100 * time.Millisecond)
	t0 = time.Now()
	fmt.Println(db.Restart(ctx), time.Since(t0))
	log, _ := db.ErrorLogSince(off)
	fmt.Println(log)
	c, raw = scratchConn(t, db.Addr())
	t0 = time.Now()
	fmt.Println(db.Kill(), time.Since(t0))
	raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err = io.ReadAll(raw)
	fmt.Printf("read %q err %v\n", b, err)
	t0 = time.Now()
	fmt.Println(db.Restart(ctx), time.Since(t0))
}
