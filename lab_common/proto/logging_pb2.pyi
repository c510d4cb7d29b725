from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class LogRequest(_message.Message):
    __slots__ = ("uuid", "msg", "request_id")
    UUID_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    msg: str
    request_id: str
    def __init__(self, uuid: _Optional[str] = ..., msg: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class LogReply(_message.Message):
    __slots__ = ("duplicate", "copy", "uuid", "msg", "logged_by", "seq")
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    COPY_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    MSG_FIELD_NUMBER: _ClassVar[int]
    LOGGED_BY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    copy: str
    uuid: str
    msg: str
    logged_by: str
    seq: int
    def __init__(self, duplicate: _Optional[bool] = ..., copy: _Optional[str] = ..., uuid: _Optional[str] = ..., msg: _Optional[str] = ..., logged_by: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...
