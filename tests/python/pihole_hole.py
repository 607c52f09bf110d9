"""Drives glory-hole's Pi-hole v6 API with `hole`, the client library Home
Assistant's Pi-hole integration uses (installed by .ci/setup), the way the
integration does: log in with a password, read everything, disable blocking
for a while, enable it again.

Usage: pihole_hole.py summary|disable SECONDS|enable
The box is at $GH_HOST:$GH_PORT with the password (or API token) in
$GH_PASSWORD. Prints what the integration would show, as one JSON object.
Run by tests/web_pihole.rs.
"""

import asyncio
import json
import os
import sys

try:
    import aiohttp
    from hole import Hole
except ImportError as err:
    sys.exit(f"the Python library `hole` is not installed ({err}): run .ci/setup")


async def main(action, seconds):
    async with aiohttp.ClientSession() as session:
        api = Hole(
            os.environ["GH_HOST"],
            session,
            port=int(os.environ["GH_PORT"]),
            password=os.environ["GH_PASSWORD"],
            version=6,
        )
        async with api:
            if action == "summary":
                await api.get_data()
            elif action == "disable":
                await api.disable(seconds)
            elif action == "enable":
                await api.enable()
            else:
                sys.exit(f"unknown action {action!r}: summary, disable SECONDS or enable")
            return {
                "status": api.status,
                "dns_queries_today": api.dns_queries_today,
                "ads_blocked_today": api.ads_blocked_today,
                "ads_percentage_today": api.ads_percentage_today,
                "unique_clients": api.unique_clients,
                "unique_domains": api.unique_domains,
                "domains_being_blocked": api.domains_being_blocked,
                "queries_cached": api.queries_cached,
                "queries_forwarded": api.queries_forwarded,
                "core_current": api.core_current,
                "core_update": api.core_update,
                "top_ads": api.top_ads,
                "top_queries": api.top_queries,
            }


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    print(json.dumps(asyncio.run(main(sys.argv[1], secs))))
