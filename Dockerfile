# mqlite broker image: docker build -t mqlite . && docker run -p 1883:1883 mqlite
FROM python:3.12-slim
RUN useradd --system --uid 1883 --home-dir /var/lib/mqlite --create-home mqlite
COPY . /src
RUN pip install --no-cache-dir "/src[cluster]" && rm -rf /src
COPY contrib/docker.toml /etc/mqlite/mqlite.toml
USER mqlite
WORKDIR /var/lib/mqlite
VOLUME /var/lib/mqlite
EXPOSE 1883
STOPSIGNAL SIGTERM
CMD ["mqlite", "broker", "-c", "/etc/mqlite/mqlite.toml"]
