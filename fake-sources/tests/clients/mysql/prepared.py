"""Runs statements as server-side prepared statements with mysql-connector-python
(`cursor(prepared=True)`: COM_STMT_PREPARE, then COM_STMT_EXECUTE with typed parameters and
binary result rows) and prints what the client made of each, as JSON.

Usage: prepared.py HOST PORT USER PASSWORD DATABASE < cases.json
cases.json: [{"sql": "SELECT ... WHERE a = ?", "params": [1, 2.5, "x", null]}, ...]
Output: one JSON list with, per case, {"columns": [[name, type_code], ...], "rows": [[...]]}
or {"error": {"errno": n, "sqlstate": "...", "msg": "..."}}.
"""

import decimal
import json
import sys

import mysql.connector


def plain(value):
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def main():
    host, port, user, password, database = sys.argv[1:6]
    cases = json.load(sys.stdin)
    conn = mysql.connector.connect(
        host=host,
        port=int(port),
        user=user,
        password=password,
        database=database,
        use_pure=True,
        ssl_disabled=True,
    )
    results = []
    for case in cases:
        cursor = conn.cursor(prepared=True)
        try:
            cursor.execute(case["sql"], tuple(case["params"]))
            rows = cursor.fetchall()
            columns = [[d[0], d[1]] for d in cursor.description or []]
            results.append(
                {"columns": columns, "rows": [[plain(v) for v in row] for row in rows]}
            )
        except mysql.connector.Error as error:
            results.append(
                {
                    "error": {
                        "errno": error.errno,
                        "sqlstate": error.sqlstate,
                        "msg": error.msg,
                    }
                }
            )
        finally:
            cursor.close()
    conn.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
