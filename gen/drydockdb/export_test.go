package drydockdb

// Query texts for the query-plan test (package drydockdb_test). Hand-written;
// sqlc leaves files it did not generate alone.
var (
	SourceTasksSQL              = sourceTasks
	SourceMessagesSQL           = sourceMessages
	SourceBuildDataNodesSQL     = sourceBuildDataNodes
	SourceBuildDataSQL          = sourceBuildData
	SourceBootActionsSQL        = sourceBootActions
	SourceBootActionStatusesSQL = sourceBootActionStatuses
)
