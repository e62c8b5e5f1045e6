# The product's one image, for both services: the controller (`edgectl controller run`, a Temporal
# worker; deploy/kubernetes/deployment.yaml) and the region selector (`edgectl selector serve`;
# deploy/kubernetes/selector-workload.yaml), plus `edgectl infra eks-token`, the kubeconfig exec
# plugin that authenticates to each regional EKS cluster with the pod's EKS Pod Identity credentials
# (no AWS CLI in the image). Build from the repository root:
#   docker build -f deploy/controller.Dockerfile -t <registry>/edgeplane:0.1.0 .
# Base pinned to a patch release; pin its digest too in your registry mirror (docs/deploy-aws.md).

FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/edgeplane
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY workflows ./workflows
COPY infra ./infra
COPY sim ./sim
COPY edgectl ./edgectl
COPY selector ./selector
# The product and its `aws` extra (botocore, for EKS tokens); no test or build tools reach the image.
RUN /opt/edgeplane/bin/pip install '.[aws]'

FROM python:3.11.13-slim-bookworm
# uid/gid 10001 match deploy/kubernetes/deployment.yaml (runAsUser/runAsGroup).
RUN groupadd --system --gid 10001 edgeplane \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin edgeplane
COPY --from=build /opt/edgeplane /opt/edgeplane
ENV PATH=/opt/edgeplane/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
# Metrics port of the control loop (deploy/kubernetes/networkpolicy.yaml lets Prometheus in).
EXPOSE 9464
ENTRYPOINT ["edgectl"]
CMD ["controller", "run", "--help"]
