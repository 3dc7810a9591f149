package log

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDatabaseConnectionsDropped kills every database connection of a log
// on S3 + MariaDB in the middle of concurrent ingest: adds fail with a
// clear error while it happens, the log recovers on its own, and every
// acknowledged entry is there.
func TestDatabaseConnectionsDropped(t *testing.T) {
	if !slices.Contains(storages(t), StorageS3) {
		t.Skip("needs CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN")
	}
	st := onStorage(t, StorageS3)
	s := startServer(t, t.TempDir(), st)
	var cfg Config
	st(&cfg)
	admin, err := sql.Open("mysql", cfg.S3.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var mu sync.Mutex
	acked := map[string]uint64{}
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("authors/id/D/DB/DBDROP/W%d-%d.tar.gz", w, i)
				code, body := s.add(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%064x","uploader":"DBDROP","time":"2024-01-02T03:04:05Z"}`, p, i, w*1000000+i))
				if code != 200 {
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var idx uint64
				fmt.Sscanf(string(body), `{"duplicate":false,"index":%d}`, &idx)
				mu.Lock()
				acked[p] = idx
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	// Drop every connection of the log's database but our own, twice.
	for range 2 {
		rows, err := admin.Query("SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()")
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			admin.Exec(fmt.Sprintf("KILL CONNECTION %d", id))
		}
		t.Logf("killed %d database connections", len(ids))
		time.Sleep(time.Second)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	// Recovered: a new add works.
	if code, body := s.add(`{"path":"authors/id/D/DB/DBDROP/After.tar.gz","size":1,"sha256":"` + fmt.Sprintf("%064x", 7) + `","uploader":"DBDROP","time":"2024-01-02T03:04:05Z"}`); code != 200 {
		t.Fatalf("after the connections came back: %d %s", code, body)
	}
	// Every acknowledged entry is logged at its index.
	var maxIdx uint64
	for _, i := range acked {
		maxIdx = max(maxIdx, i+1)
	}
	s.checkpoint(maxIdx)
	if err := s.log.follow.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, idx := range acked {
		recs, err := s.log.History(p)
		if err != nil || len(recs) != 1 || recs[0].Index != idx {
			t.Fatalf("%s acknowledged at %d: %+v %v", p, idx, recs, err)
		}
	}
	t.Logf("%d entries acknowledged, %d adds refused while connections were dropped", len(acked), failed.Load())
}
