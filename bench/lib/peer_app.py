# Copied verbatim (only this header added) from the shared benchmark baseline,
# ../shared/bench/peer_app.py of the bioverify project (issue 17), so that bench/api.py
# runs from a fresh clone. Excluded from ruff in pyproject.toml to stay byte-identical.
"""A plain FastAPI + SQLAlchemy 'create session' service: the thing a user would write instead.

One API-key lookup (SELECT) and one INSERT in one transaction, pydantic validation, 201 JSON.
Run: python peer_app.py PORT DATABASE_URL   (drops and creates its two tables)
Used by the benchmarks as the baseline for create-session throughput.
"""
import sys, uuid, datetime as dt, hashlib
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import create_engine, String, DateTime, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
import uvicorn

port, url = int(sys.argv[1]), sys.argv[2]

class Base(DeclarativeBase):
    pass

class Client(Base):
    __tablename__ = "peer_clients"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))

class Sess(Base):
    __tablename__ = "peer_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

kw = {"connect_args": {"check_same_thread": False}} if url.startswith("sqlite") else {"pool_size": 20, "max_overflow": 20}
engine = create_engine(url, **kw)
if url.startswith("sqlite"):
    with engine.connect() as c:
        c.exec_driver_sql("PRAGMA journal_mode=WAL"); c.exec_driver_sql("PRAGMA synchronous=NORMAL")
Base.metadata.drop_all(engine); Base.metadata.create_all(engine)
S = sessionmaker(engine, expire_on_commit=False)
KEY = "peerkey"
with S.begin() as db:
    db.add(Client(key_hash=hashlib.sha256(KEY.encode()).hexdigest(), name="peer"))

class Create(BaseModel):
    type: str
    customerId: str | None = None

app = FastAPI()

@app.post("/v2/verification-session", status_code=201)
def create(body: Create, x_api_key: str = Header()):
    with S.begin() as db:
        c = db.scalar(select(Client).where(Client.key_hash == hashlib.sha256(x_api_key.encode()).hexdigest()))
        if c is None:
            raise HTTPException(401)
        s = Sess(id=str(uuid.uuid4()), client=c.name, type=body.type, created=dt.datetime.now(dt.timezone.utc))
        db.add(s)
    return {"sessionId": s.id, "status": "PENDING", "type": s.type}

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
