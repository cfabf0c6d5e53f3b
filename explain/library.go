package explain

import "strings"

// Library keys: the client libraries whose settings the advice names.
const (
	LibGoSQLDriver = "go-sql-driver"
	LibLibmariadb  = "libmariadb"
	LibPyMySQL     = "pymysql"
	LibMysqlnd     = "mysqlnd"
	LibMySQL2      = "mysql2"
	LibConnectorJ  = "connector-j"
)

// libraryNames are the libraries in the order the README lists them, with
// the name a person knows them by.
var libraryNames = []struct{ key, name string }{
	{LibGoSQLDriver, "go-sql-driver/mysql"},
	{LibLibmariadb, "libmariadb / mysqlclient"},
	{LibPyMySQL, "PyMySQL"},
	{LibMysqlnd, "PHP mysqlnd"},
	{LibMySQL2, "node mysql2"},
	{LibConnectorJ, "MariaDB / MySQL Connector/J"},
}

// LibraryOf maps the _client_name connection attribute to a library key,
// or "" for a library the table does not know. The names are those the
// libraries send by default (protocol brief, section 2).
func LibraryOf(clientName string) string {
	n := strings.ToLower(strings.TrimSpace(clientName))
	switch {
	case n == "go-mysql-driver":
		return LibGoSQLDriver
	case n == "libmariadb", n == "libmysql":
		return LibLibmariadb
	case n == "pymysql":
		return LibPyMySQL
	case n == "mysqlnd":
		return LibMysqlnd
	case n == "node-mysql-2", n == "mysql2":
		return LibMySQL2
	case strings.Contains(n, "connector/j"), strings.Contains(n, "connector-java"),
		strings.Contains(n, "connector java"):
		return LibConnectorJ
	}
	return ""
}
