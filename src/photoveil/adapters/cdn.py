"""CloudFront: drop cached copies of photos that were deleted or replaced by an edit."""

from __future__ import annotations

import time
from typing import Any

from photoveil.adapters.clients import cloudfront_client


class Cdn:
    """Invalidations on one distribution; with none (the local stack has no CloudFront) it does nothing."""

    def __init__(self, distribution_id: str, client: Any = None) -> None:
        self.distribution_id = distribution_id
        self._client = client

    def invalidate(self, paths: list[str]) -> str | None:
        """Ask every edge to forget ``paths`` (a trailing * matches the rest); the invalidation id."""
        if not self.distribution_id:
            return None
        client = self._client or cloudfront_client()
        response = client.create_invalidation(
            DistributionId=self.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": f"photoveil-{time.time_ns()}",
            },
        )
        return str(response["Invalidation"]["Id"])
