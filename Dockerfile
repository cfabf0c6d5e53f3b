# Build: docker build -t abortscope .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /abortscope ./cmd/abortscope

FROM gcr.io/distroless/static-debian12
COPY --from=build /abortscope /abortscope
EXPOSE 3307 9307
ENTRYPOINT ["/abortscope"]
