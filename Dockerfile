# syntax=docker/dockerfile:1
# One image, every role: the command picks it (prism api, prism analyzer,
# prism setup, prism migrate, ...). Build with `make image`.

# The Go of go.work (go 1.26), pinned to the patch release the tests run on.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY . .
# Static (the final stage has no libc), with the time zone database inside.
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/prism ./cmd/prism
# The final stage is scratch: give it what a process expects to find. /tmp
# (sticky, world-writable) holds the extractor's per-document work
# directories and, through XDG_CACHE_HOME, its compiled PDFium; /etc/passwd
# names the unprivileged user; CA certificates reach AWS, S3 and NATS over TLS.
RUN mkdir -p /rootfs/tmp /rootfs/etc/ssl/certs \
 && chmod 1777 /rootfs/tmp \
 && echo 'nonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'nonroot:x:65532:' > /rootfs/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="AI-Prism" \
      org.opencontainers.image.description="Document risk assessment: every role of the pipeline in one binary (prism <role>)" \
      org.opencontainers.image.source="https://github.com/aiprism/prism" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /rootfs/ /
COPY --from=build /out/prism /usr/local/bin/prism
# The extractor re-executes this binary as `prism extract-worker` per
# document; it reads /proc/<pid> of its workers (the runtime mounts /proc)
# and needs a writable TMPDIR and cache, both under /tmp (an emptyDir or
# tmpfs where the root file system is read-only).
ENV XDG_CACHE_HOME=/tmp/cache \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080 9100
# No shell here: the binary checks its own endpoints (METRICS_ADDR's
# /healthz, API_ADDR's /readyz, BEDROCKSIM_ADDR's /healthz) and exits 0 or 1.
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/prism", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/prism"]
CMD ["help"]
