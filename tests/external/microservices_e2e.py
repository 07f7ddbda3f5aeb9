"""End-to-end flow through the gateway in microservices mode (each kefu
service its own process on PostgreSQL and Redis), with only the standard
library: login, accounts, customers, tickets and their SLAs, email threading,
live events, complaints, the training catalogue, the staff directory,
refusals.

Usage: microservices_e2e.py BASE_URL ADMIN_USER ADMIN_PASSWORD SECOND_ADMIN_USER (same password)
"""
import base64
import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def call(base, method, path, token=None, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(req, data=data, timeout=20) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None), dict(r.headers)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, (json.loads(text) if text else None), dict(e.headers)


def main():
    base, user, password, second = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    s, tok, _ = call(base, "POST", "/api/v1/auth/login", body={"username": user, "password": password})
    check(s == 200, "admin logs in")
    admin = tok["accessToken"]
    # A login account speaks for an active person of the staff directory.
    s, person, _ = call(base, "POST", "/api/v1/staff/people", admin, {"person": {
        "staffId": "agent.e2e", "name": "端到端坐席", "position": "客服专员", "hireDate": "2024-03-01"}})
    check(s == 200 and person["staffId"] == "agent.e2e", "an admin adds the agent to the staff directory (gateway → staff)")
    s, made, _ = call(base, "POST", "/api/v1/accounts", admin, {"username": "agent.e2e", "password": "a long passphrase", "roles": ["agent"], "staffId": "agent.e2e"})
    check(s == 201 and made["roles"] == [], "admin creates an agent account, its role waiting for approval")
    grant = made["pendingRoleGrant"]["id"]
    s, _, _ = call(base, "POST", f"/api/v1/role-grants/{grant}/approve", admin)
    check(s == 403, "the proposing admin cannot approve the grant")
    s, tok, _ = call(base, "POST", "/api/v1/auth/login", body={"username": second, "password": password})
    check(s == 200, "a second admin logs in")
    s, done, _ = call(base, "POST", f"/api/v1/role-grants/{grant}/approve", tok["accessToken"], {"note": "e2e"})
    check(s == 200 and done["state"] == "approved", "the second admin approves the agent role")
    s, tok, _ = call(base, "POST", "/api/v1/auth/login", body={"username": "agent.e2e", "password": "a long passphrase"})
    agent = tok["accessToken"]

    s, c, h = call(base, "POST", "/api/v1/customers", agent, {
        "customer": {"companyName": "微服務測試有限公司", "uscc": "91110000600037341L", "taxpayerType": "TAXPAYER_TYPE_GENERAL"},
        "contacts": [{"name": "王芳", "mobile": "13800138000", "email": "cfo@client.example"}]})
    check(s == 200 and c["contacts"][0]["primary"], "agent creates a customer through gateway → customers")
    cid = c["id"]

    # Live events: listen before acting.
    got = []
    u = urllib.parse.urlparse(base)

    def listen():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", "/api/v1/events", headers={"authorization": f"Bearer {agent}"})
        r = conn.getresponse()
        deadline = time.time() + 25
        while time.time() < deadline:
            line = r.fp.readline().decode()
            if not line:
                break
            got.append(line.strip())
            if "ticket_created" in line:
                break

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(1.0)
    s, tk, _ = call(base, "POST", "/api/v1/tickets", agent, {"ticket": {
        "kind": "TICKET_KIND_BUSINESS_REQUEST", "channel": "CHANNEL_WECHAT", "subject": "9月增值稅申報",
        "category": "tax_filing", "customerId": cid, "requestType": "monthly_tax_filing", "filingPeriod": "2026-09",
        "assignee": "agent.e2e"}})
    check(s == 200 and tk["number"].startswith("KF-"), "agent opens a tax-filing request through gateway → tickets → customers")
    check(tk["filingDeadline"] == "2026-10-26", "the filing deadline comes from the calendar data")
    check(tk.get("assigneeName") == "端到端坐席", "the ticket view names the assignee (gateway → staff)")
    s, sla, _ = call(base, "GET", f"/api/v1/tickets/{tk['id']}/sla", agent)
    metrics = {x["metric"] for x in sla["targets"]}
    check({"first_response", "resolution"} <= metrics, f"SLA targets started ({sorted(metrics)})")
    t.join(timeout=25)
    check(any("ticket_created" in line for line in got), "the agent's event stream shows the new ticket (tickets → Redis → gateway)")

    raw = ("From: 王芳 <cfo@client.example>\r\nTo: service@firm.example\r\nSubject: 發票問題\r\n"
           "Message-ID: <e2e-1@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n請問如何開票？").encode()
    s, first, _ = call(base, "POST", "/api/v1/emails", agent, {"raw": base64.b64encode(raw).decode()})
    check(s == 200 and first["ticket"]["customerId"] == cid, "an email becomes a ticket for the sender's customer")
    reply = ("From: cfo@client.example\r\nSubject: Re: 發票問題\r\nMessage-ID: <e2e-2@client.example>\r\n"
             "In-Reply-To: <e2e-1@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n補充信息").encode()
    s, second, _ = call(base, "POST", "/api/v1/emails", agent, {"raw": base64.b64encode(reply).decode()})
    check(s == 200 and second["threaded"] and second["ticket"]["id"] == first["ticket"]["id"], "the reply threads onto its ticket")

    # A complaint escalated from the ticket: gateway → complaints → tickets and customers, over mutual TLS.
    s, cp, _ = call(base, "POST", "/api/v1/complaints", agent, {"complaint": {
        "source": "COMPLAINT_SOURCE_TICKET_ESCALATION", "channel": "CHANNEL_WECHAT", "ticketId": tk["number"],
        "category": "timeliness", "severity": "SEVERITY_MEDIUM", "description": "申报进度太慢"}})
    check(s == 200 and cp["number"].startswith("TS-") and cp["customerId"] == cid and cp["ticketId"] == tk["id"],
          "an agent escalates the ticket into a complaint (gateway → complaints → tickets, customers)")
    s, moved, _ = call(base, "POST", f"/api/v1/complaints/{cp['number']}/transitions", agent,
                       {"action": "COMPLAINT_ACTION_ACKNOWLEDGE", "reason": "已电话告知客户受理"})
    check(s == 200 and moved["state"] == "COMPLAINT_STATE_ACKNOWLEDGED", "the complaint is acknowledged with its reason")
    s, dl, _ = call(base, "GET", f"/api/v1/complaints/{cp['id']}/deadlines", agent)
    ack = [d for d in dl.get("deadlines", []) if d["metric"] == "acknowledgement"]
    check(s == 200 and len(dl["deadlines"]) == 3 and ack and ack[0]["state"] == "DEADLINE_STATE_FULFILLED",
          "the complaint's deadlines run, the acknowledgement met (complaints' own sweeper and Redis prefix)")
    evidence = "2026-03-02 客户微信截图说明：申报材料已于当日提交。".encode()
    s, att, _ = call(base, "POST", f"/api/v1/complaints/{cp['id']}/attachments", agent,
                     {"fileName": "说明.txt", "content": base64.b64encode(evidence).decode()})
    check(s == 200 and att["contentType"] == "text/plain", "evidence is attached (sealed into the S3-compatible store)")
    s, got, _ = call(base, "GET", f"/api/v1/complaint-attachments/{att['id']}?purpose=%E6%A0%B8%E5%AF%B9", agent)
    check(s == 200 and base64.b64decode(got["content"]) == evidence, "and read back for a stated purpose")
    s, board, _ = call(base, "GET", "/api/v1/sla/overview", admin)
    check(s == 200 and board["byQueue"].get("complaints", {}).get("open", 0) >= 2,
          "the SLA overview joins complaint deadlines to tickets' queues")

    # The training catalogue: gateway → training, over mutual TLS (hr and admin add courses).
    s, course, _ = call(base, "POST", "/api/v1/training/courses", admin, {"course": {
        "code": "CI-TRAIN-01", "title": "系统操作入门", "topic": "TOPIC_SYSTEMS", "method": "METHOD_ONLINE", "hours": 1.5}})
    check(s == 200 and course["code"] == "CI-TRAIN-01", "an admin adds a course to the catalogue (gateway → training)")
    s, courses, _ = call(base, "GET", "/api/v1/training/courses", admin)
    check(s == 200 and any(c["code"] == "CI-TRAIN-01" for c in courses.get("courses", [])),
          "the course is listed in the catalogue")

    # The staff directory: gateway → staff, over mutual TLS (hr and admin add people).
    s, person, _ = call(base, "POST", "/api/v1/staff/people", admin, {"person": {
        "staffId": "ci-agent-1", "name": "王芳", "hireDate": "2024-03-01"}})
    check(s == 200 and person["staffId"] == "ci-agent-1", "an admin adds a person to the staff directory (gateway → staff)")
    s, person, _ = call(base, "GET", "/api/v1/staff/people/ci-agent-1", admin)
    check(s == 200 and person["name"] == "王芳", "the person is read back from the directory")

    s, p, h = call(base, "POST", "/api/v1/audit-entries/verify", agent)
    check(s == 403 and h.get("content-type", h.get("Content-Type")) == "application/problem+json", "the agent is refused what the role forbids, as problem+json")
    s, v, _ = call(base, "POST", "/api/v1/audit-entries/verify", admin)
    check(s == 200 and v["intact"], "the audit chain verifies")
    print("microservices end-to-end: all checks passed")


if __name__ == "__main__":
    main()
