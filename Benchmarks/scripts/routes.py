#!/usr/bin/env python3
"""routes.py FILE FILLERS: the bench's 50 VirtualService routes (scripts/bench's routes load).

One VirtualService per filler host svc-N.filler.bench (a uri-prefix route each), and
origin.bench's: 49 http routes the load's requests (GET /1k) do not match -- uri prefixes, a
method, a header -- each with a request header operation, then `origin-default`, which they
match. Every request to origin.bench walks all 50.
"""
import sys


def filler(i):
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: filler-{i}
spec:
  hosts:
  - svc-{i}.filler.bench
  http:
  - name: filler-{i}-api
    match:
    - uri:
        prefix: /api/{i}
    route:
    - destination:
        host: svc-{i}.filler.bench
        port:
          number: 80
"""


def origin_route(i):
    if i % 3 == 0:
        match = f"    - uri:\n        prefix: /v{i}/\n      method:\n        exact: POST\n"
    elif i % 3 == 1:
        match = f"    - uri:\n        prefix: /v{i}/\n"
    else:
        match = f"    - headers:\n        x-route:\n          exact: r{i}\n"
    return f"""  - name: origin-{i}
    match:
{match}    headers:
      request:
        set:
          x-bench-route: r{i}
    route:
    - destination:
        host: origin.bench
        port:
          number: 80
"""


def main():
    out, fillers = sys.argv[1], int(sys.argv[2])
    docs = [filler(i) for i in range(fillers)]
    docs.append("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: origin-bench
spec:
  hosts:
  - origin.bench
  http:
""" + "".join(origin_route(i) for i in range(49)) + """  - name: origin-default
    route:
    - destination:
        host: origin.bench
        port:
          number: 80
""")
    with open(out, "w") as f:
        f.write("---\n".join(docs))


if __name__ == "__main__":
    main()
