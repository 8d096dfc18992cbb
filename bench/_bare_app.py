"""The limit the API benchmark compares against: a bare FastAPI app on the same uvicorn.

`uvicorn --app-dir bench _bare_app:app`. One read that returns a small
JSON document and one write that validates a small JSON body: no auth, no database.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Note(BaseModel):
    person_id: str
    text: str


@app.get("/read")
async def read() -> dict[str, object]:
    return {"items": [{"seq": n, "type": "pb.example.v1"} for n in range(5)], "next": None}


@app.post("/write", status_code=201)
async def write(note: Note) -> dict[str, str]:
    return {"person_id": note.person_id, "status": "accepted"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
