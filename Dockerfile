# camioc with its embedded default configuration (simulation cameras).
#   docker build -t camioc .
#   docker run --rm -p 8888:8888 -p 8889:8889 -p 5064:5064 -p 5064:5064/udp -p 10100-10300:10100-10300 camioc
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY camioc ./camioc
RUN python -m venv /opt/camioc \
 && /opt/camioc/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/camioc/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 1000 camioc
COPY --from=build /opt/camioc /opt/camioc
COPY --chown=camioc:camioc configs /home/camioc/configs
USER camioc
WORKDIR /home/camioc
ENV PATH=/opt/camioc/bin:$PATH \
    EPICS_CAS_INTF_ADDR_LIST=0.0.0.0 \
    NUMBA_CACHE_DIR=/home/camioc/.numba-cache
# Import smoke test at build time: a broken install fails the build, not the first start.
RUN python -c "import camioc.app, camioc.ioc.server, camioc.rest.camera_api"
# REST (camera, pipeline), Channel Access (TCP+UDP), camera and pipeline bsread streams.
EXPOSE 8888 8889 5064/tcp 5064/udp 10100-10300 11100-11200
STOPSIGNAL SIGINT
ENTRYPOINT ["camioc", "--base", "/home/camioc/configs", "--interface", "0.0.0.0"]
