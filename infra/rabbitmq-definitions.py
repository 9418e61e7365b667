#!/usr/bin/env python3
"""The local broker's users and permissions (DESIGN.md §2: least privilege on the bus), as a
RabbitMQ definitions file loaded at boot. Each service has its own user that may write only the
exchanges (and, on the topic exchanges, only the routing keys) it produces, read only the
exchanges it binds from and its own queues, and declare only the standard exchanges and its own
queues. `swiftchat` is the administrator that tests, the benchmark and operators use. No `guest`.

Usage: rabbitmq-definitions.py ADMIN_USER ADMIN_PASSWORD > definitions.json
Service passwords are `swiftchat_<service>` locally, like the Postgres roles.
"""
import base64
import hashlib
import json
import os
import sys

EXCHANGES = "UserEvents|MessageEvents|InstanceDelivery|DeadLetters"

# service: (exchanges it writes, exchanges it binds from, routing keys it may publish per topic exchange)
SERVICES = {
    "auth": ("UserEvents|DeadLetters", "UserEvents|DeadLetters",
             {"UserEvents": r"^user\.(registered|logged_in|signed_out|deleted)$"}),
    "users": ("UserEvents|DeadLetters", "UserEvents|DeadLetters",
              {"UserEvents": r"^(user\.updated|contact\.(added|removed))$"}),
    "messages": ("MessageEvents|InstanceDelivery|DeadLetters", "UserEvents|MessageEvents|DeadLetters",
                 {"MessageEvents": r"^(message\.stored|receipt\.updated|conversation\.[a-z_]+)$"}),
    "socket-handler": ("UserEvents|MessageEvents|InstanceDelivery|DeadLetters", "UserEvents|MessageEvents|InstanceDelivery|DeadLetters",
                       {"UserEvents": r"^presence\.changed$", "MessageEvents": r"^(message\.sent|receipt\.marked)$"}),
    "notifications": ("UserEvents|DeadLetters", "UserEvents|MessageEvents|InstanceDelivery|DeadLetters",
                      {"UserEvents": r"^notification\.changed$"}),
}


def password_hash(password: str) -> str:
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def main() -> None:
    admin, admin_password = sys.argv[1], sys.argv[2]
    users = [{"name": admin, "password_hash": password_hash(admin_password),
              "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}]
    permissions = [{"user": admin, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
    topic_permissions = []
    for service, (writes, reads, topics) in SERVICES.items():
        own = rf"{service.replace('-', '[-]')}\..*"
        users.append({"name": service, "password_hash": password_hash(f"swiftchat_{service}"),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
        permissions.append({"user": service, "vhost": "/", "configure": rf"^({EXCHANGES}|{own})$",
                            "write": rf"^({writes}|{own})$", "read": rf"^({reads}|{own})$"})
        for exchange in ("UserEvents", "MessageEvents"):
            # A topic exchange it may not write at all gets a pattern nothing matches.
            topic_permissions.append({"user": service, "vhost": "/", "exchange": exchange,
                                      "write": topics.get(exchange, "^$"), "read": ".*"})
    json.dump({"users": users, "vhosts": [{"name": "/"}], "permissions": permissions,
               "topic_permissions": topic_permissions}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
