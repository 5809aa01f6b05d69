# One image, every role: the command picks it (prism api, prism analyzer, ...).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/prism ./cmd/prism

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/prism /usr/local/bin/prism
# The extractor's sandboxed workers compile PDFium once into this cache.
ENV XDG_CACHE_HOME=/tmp/cache
USER nonroot
ENTRYPOINT ["/usr/local/bin/prism"]
