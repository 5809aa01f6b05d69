// Package platform holds the infrastructure every role shares and no role owns:
// configuration loading (config), logging and metrics (obs), the S3 claim-check
// store (blob) and the embedded servers used by `prism dev` and by tests
// (natsembed, s3local, pglocal, testenv).
package platform
