// What a JDBC tool (DBeaver, Metabase, any Java program) asks the PostgreSQL endpoint when it
// connects and browses: run by tests/sql_access.rs with Debian's PostgreSQL JDBC driver
// (libpostgresql-jdbc-java), as `java -cp /usr/share/java/postgresql.jar Metadata.java PORT USER
// PASSWORD`. Prints one line per fact; the test compares them with what the CLI says.
import java.sql.*;
import java.util.*;

public class Metadata {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/auditlake?connectTimeout=10";
        try (Connection c = DriverManager.getConnection(url, args[1], args[2])) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseMajorVersion());
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            System.out.println("tables " + String.join(",", tables));
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "public", "events", "%")) {
                while (rs.next()) columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
            }
            System.out.println("columns " + String.join(",", columns));
            try (PreparedStatement st = c.prepareStatement("SELECT count(*) AS n FROM events");
                 ResultSet rs = st.executeQuery()) {
                rs.next();
                System.out.println("count " + rs.getLong("n"));
            }
        }
        try {
            DriverManager.getConnection(url, args[1], "not-" + args[2]).close();
            System.out.println("connected with a wrong password");
        } catch (SQLException e) {
            System.out.println("refused " + e.getSQLState());
        }
    }
}
