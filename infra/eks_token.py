"""EKS authentication token for a kubeconfig `exec` credential plugin (`edgectl infra eks-token`).

What `aws eks get-token` does, without the AWS CLI in the controller's image: presign an STS
GetCallerIdentity request for the cluster (header `x-k8s-aws-id: <cluster name>`) with whatever
credentials botocore finds (in the controller's pod: EKS Pod Identity, through the agent at
169.254.170.23), and hand the URL, base64url-encoded behind `k8s-aws-v1.`, to kubectl or the
Kubernetes client. The signing is local: the controller never calls STS; each cluster's API server
does, to learn who is asking, and then maps the role to the `edgeplane-controller` group through
its access entry.

botocore is imported lazily: it is the `aws` extra (`pip install '.[aws]'`, what the image
installs), not a dependency of the rest of the product.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

TOKEN_PREFIX: Final = "k8s-aws-v1."
CLUSTER_ID_HEADER: Final = "x-k8s-aws-id"
PRESIGN_SECONDS: Final = 60
"""Lifetime of the presigned URL as the EKS authenticator expects it."""
TOKEN_LIFETIME: Final = timedelta(minutes=14)
"""What the ExecCredential advertises: EKS accepts a token for 15 minutes; renew a minute early."""


def eks_token(cluster_name: str, cloud_region: str, session: Any = None) -> str:
    """Bearer token for `cluster_name` in `cloud_region`, signed with botocore's default credentials."""
    import botocore.session  # the `aws` extra

    session = session or botocore.session.get_session()
    client = session.create_client("sts", region_name=cloud_region)

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    client.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=PRESIGN_SECONDS, HttpMethod="GET")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def exec_credential(token: str, now: datetime | None = None) -> str:
    """The `client.authentication.k8s.io/v1beta1` ExecCredential JSON a kubeconfig exec plugin prints."""
    expires = (now or datetime.now(UTC)) + TOKEN_LIFETIME
    return json.dumps(
        {
            "kind": "ExecCredential",
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "spec": {},
            "status": {"expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token},
        }
    )
