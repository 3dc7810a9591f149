package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/transparency-dev/tessera"
	tessaws "github.com/transparency-dev/tessera/storage/aws"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/CPAN-Security/cpan-tlog/log/decide/shared"
)

// Storage names the Tessera driver a log runs on.
const (
	StoragePOSIX = "posix" // the tree as files under DATA/tree (the default)
	StorageS3    = "s3"    // Tessera's storage/aws: tiles in an S3 bucket, sequencing in MySQL/MariaDB
)

// S3Config places a log on an S3-compatible object store and a
// MySQL-compatible database (Tessera's storage/aws driver). Credentials come
// from the standard AWS environment variables or shared config.
type S3Config struct {
	// Endpoint is the S3 server's URL for non-AWS servers (MinIO, Ceph,
	// Garage, versitygw, R2...), addressed path-style; empty means AWS.
	Endpoint string
	Bucket   string
	// Region defaults to us-east-1, which non-AWS servers accept.
	Region string
	// DSN is the database, e.g. user:pass@tcp(127.0.0.1:3306)/cpantlog.
	DSN string
	// MaxOpenConns caps database connections (default 64): concurrent adds
	// would otherwise exhaust MariaDB's default 151.
	MaxOpenConns int
	// CreateBucket creates the bucket if it does not exist (Tessera's
	// driver does not).
	CreateBucket bool
}

// driver builds the Tessera driver cfg asks for. witnessRT, if not nil,
// carries the requests Tessera makes to witnesses (for their metrics).
func driver(ctx context.Context, cfg Config, witnessRT ...http.RoundTripper) (tessera.Driver, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	if len(witnessRT) > 0 && witnessRT[0] != nil {
		client.Transport = witnessRT[0]
	}
	switch cfg.Storage {
	case "", StoragePOSIX:
		return posix.New(ctx, posix.Config{Path: filepath.Join(cfg.DataDir, TreeDir), HTTPClient: client})
	case StorageS3:
		s := cfg.S3
		if s.Bucket == "" || s.DSN == "" {
			return nil, errors.New("--storage s3 needs --s3-bucket and --mysql-dsn")
		}
		if s.Region == "" {
			s.Region = "us-east-1"
		}
		if s.MaxOpenConns == 0 {
			s.MaxOpenConns = 64
		}
		sdk, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(s.Region))
		if err != nil {
			return nil, fmt.Errorf("AWS configuration (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or shared config): %w", err)
		}
		if err := ensureBucket(ctx, s); err != nil {
			return nil, err
		}
		// A writer stopped inside one of Tessera's transactions (its
		// integration holds IntCoord while it writes tiles) would stall
		// every writer's integration for as long as it is stopped.
		dsn, err := shared.IdleBoundedDSN(s.DSN)
		if err != nil {
			return nil, fmt.Errorf("--mysql-dsn: %w", err)
		}
		return tessaws.New(ctx, tessaws.Config{
			SDKConfig: &sdk,
			S3Options: func(o *s3.Options) {
				if s.Endpoint != "" {
					o.BaseEndpoint = aws.String(s.Endpoint)
					o.UsePathStyle = true
				}
			},
			Bucket:       s.Bucket,
			DSN:          dsn,
			MaxOpenConns: s.MaxOpenConns,
			MaxIdleConns: s.MaxOpenConns / 4,
			HTTPClient:   client,
		})
	default:
		return nil, fmt.Errorf("unknown storage %q (want %s or %s)", cfg.Storage, StoragePOSIX, StorageS3)
	}
}

// bucket is the log's S3 bucket, for what the log keeps there beside
// Tessera's tiles (index file versions) and for read-only front ends.
type bucket struct {
	c     *s3.Client
	name  string
	where string // for messages: the endpoint, or "AWS S3"
}

func newBucket(ctx context.Context, s S3Config) (*bucket, error) {
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	sdk, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or shared config): %w", err)
	}
	c := s3.NewFromConfig(sdk, func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
			o.UsePathStyle = true
		}
	})
	where := s.Endpoint
	if where == "" {
		where = "AWS S3"
	}
	return &bucket{c: c, name: s.Bucket, where: where}, nil
}

// get opens an object; fs.ErrNotExist when there is none.
func (b *bucket) get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if notFound(err) {
		return nil, fmt.Errorf("%s: %w", key, os.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// exists reports whether the object is there.
func (b *bucket) exists(ctx context.Context, key string) (bool, error) {
	_, err := b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

// put writes an object from a seekable body (S3 needs its length).
func (b *bucket) put(ctx context.Context, key string, body io.ReadSeeker) error {
	_, err := b.c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.name), Key: aws.String(key), Body: body})
	return err
}

// ensureBucket checks the bucket is there before Tessera's driver starts
// (which otherwise retries a missing bucket once a second for ever), and
// creates it with CreateBucket. It answers at once, with what to do.
func ensureBucket(ctx context.Context, s S3Config) error {
	b, err := newBucket(ctx, s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = b.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)})
	if err == nil {
		return nil
	}
	var nf *s3types.NotFound
	var nb *s3types.NoSuchBucket
	missing := errors.As(err, &nf) || errors.As(err, &nb) || strings.Contains(err.Error(), "StatusCode: 404")
	switch {
	case missing && s.CreateBucket:
		if _, err := b.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
			return fmt.Errorf("create bucket %s on %s: %w", s.Bucket, b.where, err)
		}
		return nil
	case missing:
		return fmt.Errorf("bucket %s does not exist on %s: create it, or pass --s3-create-bucket", s.Bucket, b.where)
	}
	return fmt.Errorf("S3 bucket %s on %s cannot be reached: %w (check --s3-endpoint and the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY credentials)", s.Bucket, b.where, err)
}

// notFound reports whether a storage read failed because the object does
// not exist. Tessera's POSIX driver says os.ErrNotExist; its AWS driver
// passes S3's NoSuchKey through only as text.
func notFound(err error) bool {
	var nsk *s3types.NoSuchKey
	return errors.Is(err, os.ErrNotExist) || errors.As(err, &nsk) ||
		(err != nil && (strings.Contains(err.Error(), "NoSuchKey") || strings.Contains(err.Error(), "StatusCode: 404")))
}
