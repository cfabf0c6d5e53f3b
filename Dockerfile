# abortscope: one static binary on distroless, run as an unprivileged user.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t abortscope .
#   docker run --rm abortscope serve --help
#
# docker-compose.yml runs it for staging; cmd/abortscope/deploy_test.go checks
# this file against it (ports, healthcheck, user, Go version).

# The builder's Go must be at least go.mod's `go` line.
FROM golang:1.26.8-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary, so it runs on distroless/static (no libc).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/abortscope ./cmd/abortscope && \
    mkdir -p /out/events && chmod 0750 /out/events

# distroless/static: CA certificates, tzdata and /etc/passwd (nonroot is
# 65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="abortscope" \
      org.opencontainers.image.description="MySQL/MariaDB proxy that tells how every connection ended, and who it was" \
      org.opencontainers.image.version="$VERSION"
COPY --from=build /out/abortscope /usr/local/bin/abortscope
# The directory for --events /var/log/abortscope/events.jsonl, owned by the
# user that writes it: a named volume mounted there starts with this
# ownership (abortscope refuses a directory every user may write to).
COPY --from=build --chown=65532:65532 /out/events /var/log/abortscope
USER 65532:65532
# 3307: the MySQL protocol (--listen); 9307: the admin API (--admin).
EXPOSE 3307 9307
# abortscope healthcheck GETs /healthz, which answers without the admin
# token (the image has no shell and no curl). The admin API must be on port
# 9307 of the container (any --admin address: 127.0.0.1 or 0.0.0.0). Its
# own --timeout (2s) is below Docker's, so a hung check says why it failed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/abortscope", "healthcheck", "--url", "http://127.0.0.1:9307/healthz"]
ENTRYPOINT ["/usr/local/bin/abortscope"]
CMD ["--help"]
